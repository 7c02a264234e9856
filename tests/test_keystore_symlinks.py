"""Symlinks where certman writes (issue 12, kind 6): no component of a path certman writes
under the keystore may be a symlink, except ``live/<name>`` itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import services
from fixtures.cli import issue_flags
from fixtures.snapshot import snapshot

from certman.errors import KeystoreError
from certman.keystore import AccountRecord, FileKeystore

CERTMAN = str(Path(sys.executable).parent / "certman")
DRIVER = Path(__file__).parent / "drivers" / "store_version.py"


def _timer_run(*args: str) -> subprocess.CompletedProcess[str]:
    """certman as the timer runs it: from /, with a bare environment."""
    return subprocess.run(
        [CERTMAN, *args], capture_output=True, text=True, timeout=120, cwd="/", env={"PATH": "/usr/bin:/bin"}
    )


def _redirect(directory: Path, elsewhere: Path) -> None:
    """Put ``directory``'s content at ``elsewhere`` and leave a symlink to it in its place."""
    directory.rename(elsewhere)
    directory.symlink_to(elsewhere)


def test_renew_force_and_issue_refuse_a_symlinked_certs_directory(pebble: services.Pebble, tmp_path: Path) -> None:
    keystore, elsewhere = tmp_path / "keystore", tmp_path / "elsewhere"
    issued = _timer_run("--keystore", str(keystore), "issue", *issue_flags(pebble), "a.example", "b.example")
    assert issued.returncode == 0, issued.stderr
    _redirect(keystore / "certs", elsewhere)
    before = snapshot(elsewhere)
    refused = f"refusing to use {keystore / 'certs'}: it is a symlink"

    renewed = _timer_run("--keystore", str(keystore), "renew", "--force", "--jobs", "2", "--json")
    again = _timer_run("--keystore", str(keystore), "issue", *issue_flags(pebble), "a.example", "b.example")

    # renew: the certificate fails with the keystore error (the batch's exit code is 7, README).
    assert renewed.returncode == 7, renewed.stderr
    [result] = json.loads(renewed.stdout)["certificates"]
    assert (result["action"], result["error"]) == ("failed", refused)
    assert again.returncode == 3, again.stderr
    assert again.stderr.startswith(f"certman: {refused}\nhint: ")
    assert "Traceback" not in renewed.stderr + again.stderr
    assert snapshot(elsewhere) == before


@pytest.mark.parametrize(
    "planted",
    [
        "certs/a.example/versions",  # below a certificate's directory
        "live",  # live/ itself; only live/<name> is a link
        "locks",  # written before anything else
    ],
)
def test_a_symlink_anywhere_under_the_keystore_is_refused_and_nothing_is_written_through_it(
    tmp_path: Path, planted: str
) -> None:
    root, elsewhere = tmp_path / "keystore", tmp_path / "elsewhere"
    first = subprocess.run([sys.executable, str(DRIVER), str(root)], capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    _redirect(root / planted, elsewhere)
    before = snapshot(elsewhere)

    done = subprocess.run([sys.executable, str(DRIVER), str(root)], capture_output=True, text=True, timeout=60)

    assert done.returncode == 3, done.stderr
    assert done.stderr == f"certman: refusing to use {root / planted}: it is a symlink\n"
    assert snapshot(elsewhere) == before


def test_the_live_link_of_a_certificate_is_the_one_symlink_allowed(tmp_path: Path) -> None:
    root = tmp_path / "keystore"
    for _ in range(2):
        done = subprocess.run([sys.executable, str(DRIVER), str(root)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    assert os.readlink(root / "live" / "a.example") == "../certs/a.example/versions/000002"


def test_saving_an_account_refuses_a_symlinked_accounts_directory(tmp_path: Path) -> None:
    keystore = FileKeystore(tmp_path / "keystore")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (keystore.root / "accounts").symlink_to(elsewhere)

    with pytest.raises(KeystoreError, match=f"refusing to use {keystore.root / 'accounts'}: it is a symlink$"):
        keystore.save_account("ca", b"key", AccountRecord(uri="https://ca.example/acct/1"))

    assert list(elsewhere.iterdir()) == []
