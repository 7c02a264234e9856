"""A private key others may read is a leaked secret: doctor fails it, renew warns on every
run, and neither changes the mode (the operator decides whether the key must be replaced)."""

from __future__ import annotations

from pathlib import Path

import pytest
import services
from fixtures.cli import CertmanRun, issue_flags


@pytest.fixture
def exposed(certman: CertmanRun, pebble: services.Pebble) -> tuple[Path, Path]:
    """An issued certificate whose live key and account key were made 0644 from outside."""
    issued = certman("issue", *issue_flags(pebble), "exposed.example")
    assert issued.exit_code == 0, issued.output
    live_key = certman.keystore / "live" / "exposed.example" / "privkey.pem"
    [account_key] = (certman.keystore / "accounts").glob("*/key.pem")
    for key in (live_key, account_key):
        key.chmod(0o644)
    return live_key.resolve(), account_key


def test_doctor_fails_each_key_others_may_read_with_a_chmod_600_hint(
    certman: CertmanRun, pebble: services.Pebble, exposed: tuple[Path, Path]
) -> None:
    live_key, account_key = exposed
    doctor = certman("doctor", "--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle))
    assert doctor.exit_code == 1
    [line] = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL")]
    assert line.startswith("FAIL  private keys: ")
    assert f"{live_key} is mode 0644, readable by others" in line
    assert f"{account_key} is mode 0644, readable by others" in line
    assert f"(hint: chmod 600 {account_key} {live_key};" in line
    assert "`certman renew --force exposed.example` issues new keys" in line
    assert "`certman account rollover` changes an account key" in line


def test_renew_warns_about_each_exposed_key_and_leaves_its_mode(
    certman: CertmanRun, exposed: tuple[Path, Path]
) -> None:
    # Opened for a proxy's user, so a key's own mode decides who reads it.
    certman.keystore.chmod(0o711)
    renewed = certman("renew")
    assert renewed.exit_code == 0, renewed.output
    warnings = [line for line in renewed.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 2, renewed.stderr
    live = certman.keystore / "live" / "exposed.example" / "privkey.pem"
    assert f"private key {live} is mode 0644, readable by others (hint: chmod 600 {live};" in warnings[0]
    assert "`certman renew --force exposed.example` issues new keys)" in warnings[0]
    assert f"private key {exposed[1]} is mode 0644" in warnings[1]
    assert all(key.stat().st_mode & 0o777 == 0o644 for key in exposed)


def test_renew_does_not_warn_while_the_keystore_root_keeps_others_out(
    certman: CertmanRun, pebble: services.Pebble, exposed: tuple[Path, Path]
) -> None:
    certman.keystore.chmod(0o700)
    renewed = certman("renew")
    doctor = certman("doctor", "--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle))
    assert renewed.exit_code == 0 and renewed.stderr == ""
    assert "FAIL  private keys: " in doctor.stdout


def test_renew_is_quiet_once_the_keys_are_0600_again(certman: CertmanRun, exposed: tuple[Path, Path]) -> None:
    certman.keystore.chmod(0o711)
    for key in exposed:
        key.chmod(0o600)
    renewed = certman("renew")
    assert renewed.exit_code == 0 and renewed.stderr == ""
