"""A second real CA, Caddy's ACME server, which lacks optional features (issue 12, kind 11).

It publishes no terms of service, no renewalInfo, and answers keyChange 501 "not
implemented" with type rejectedIdentifier. certman issues without ``--agree-tos``, renews
(from the timer's environment) on the lifetime rule, updates the account, revokes, and
says plainly that key rollover is not supported, without retrying and without leaving a
half-done rollover behind. Every step drives the real ``certman`` inside Caddy's network
namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fixtures.caddy_ca import CaddyCA

from certman.keystore import FileKeystore, ca_id

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = ("/usr/bin/env", "-i", "PATH=/usr/bin:/bin")
NAME = "localhost"


def run(caddy_ca: CaddyCA, keystore: Path, *args: str, timer: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [*(TIMER_ENV if timer else ()), CERTMAN, "--keystore", str(keystore), *args]
    done = subprocess.run(caddy_ca.inside(argv), cwd="/", capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_caddy_issues_renews_updates_and_revokes_and_rollover_is_reported_unsupported(
    caddy_ca: CaddyCA, tmp_path: Path
) -> None:
    keystore = tmp_path / "ks"
    server = ["--server", caddy_ca.directory_url, "--ca-bundle", str(caddy_ca.ca_bundle)]

    # No terms of service at this CA: nothing to agree to.
    issued = run(caddy_ca, keystore, "issue", NAME, *server, "--http-port", "80", "--json")
    assert issued.returncode == 0, issued.stderr
    first = json.loads(issued.stdout)["serial"]

    renewed = run(caddy_ca, keystore, "renew", "--force", "--json", timer=True)
    assert renewed.returncode == 0, renewed.stderr
    [result] = json.loads(renewed.stdout)["certificates"]
    assert result["action"] == "renewed" and result["serial"] != first

    updated = run(caddy_ca, keystore, "account", "update", "--email", "ops@example.org", *server)
    assert updated.returncode == 0, updated.stderr
    assert "mailto:ops@example.org" in updated.stdout

    rolled = run(caddy_ca, keystore, "account", "rollover", *server)
    assert rolled.returncode == 4
    assert rolled.stderr.splitlines() == [
        "certman: this CA does not support account key rollover (The requested operation is not implemented)",
        "hint: the CA does not implement it, so certman does not retry; use a CA that does if you need it",
    ]
    assert FileKeystore(keystore).load_pending_account_key(ca_id(caddy_ca.directory_url)) is None

    revoked = run(caddy_ca, keystore, "revoke", NAME)
    assert revoked.returncode == 0, revoked.stderr
    assert FileKeystore(keystore).read_revocation(NAME) is not None
