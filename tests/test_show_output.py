"""`certman show` in words: every recorded setting and state field as plain text, never a
Python repr (None, a tuple, a dict or a Struct), even for fields a record leaves empty."""

from __future__ import annotations

import re

import services
from fixtures.cli import CertmanRun, issue_flags

from certman.keystore import DeployState, FileKeystore, RenewalState, RevocationMarker
from certman.keystore.state_records import AriState

# What a Python repr leaves in text: None, a container, a quoted string or a Struct call.
REPR = re.compile(r"\bNone\b|[{}\[\]]|'|\w+\(\w+=")


def test_show_prints_no_python_repr_for_any_field(certman: CertmanRun, pebble: services.Pebble) -> None:
    issued = certman(
        "issue",
        *issue_flags(pebble),
        "--fallback-server",
        "https://127.0.0.1:1/dir",
        "--preferred-chain",
        "Pebble Root",
        "--reload-cmd",
        '["/bin/true"]',
        "--renew-before-days",
        "20",
        "shown.example",
    )
    assert issued.exit_code == 0, issued.output
    keystore = FileKeystore(certman.keystore)
    serial = keystore.read_index()["shown.example"].serial or ""
    # The fields a record may leave empty: no chosen time, no error, no revocation date.
    keystore.write_state(
        "shown.example",
        RenewalState(ari=AriState(cert_id="x.y", unsupported=True), deploy=DeployState(pending=True, serial=serial)),
    )
    keystore.mark_revoked("shown.example", RevocationMarker(serial, "superseded", None))

    shown = certman("show", "shown.example")

    assert shown.exit_code == 0, shown.output
    assert not REPR.search(shown.stdout), shown.stdout
    labels = [line.split(":", 1)[0].strip() for line in shown.stdout.splitlines() if line.startswith("  ")]
    for label in ("fallback", "trust", "chain", "reload", "renew at", "ARI window", "deploy"):
        assert label in labels, shown.stdout
    assert "https://127.0.0.1:1/dir" in shown.stdout and "20 days before expiry" in shown.stdout
    assert f"serial {serial} pending since" in shown.stdout and ": no detail" in shown.stdout
    assert "at an unknown time (superseded)" in shown.stdout
