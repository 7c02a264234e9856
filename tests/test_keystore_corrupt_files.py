"""Every file certman reads from the keystore, corrupt: a keystore error (exit 3) naming the
file, or in `renew` a failed certificate (exit 7) naming it; never an internal error (70).

The real CLI as a subprocess, run as the timer runs it (see test_keystore_repair)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import services
from fixtures.cli import issue_flags
from test_keystore_repair import certman, issue

from certman.keystore.layout import ca_id

# A sweep over every keystore file and command: the full suite runs it, `make test-fast` does not.
pytestmark = pytest.mark.slow

NAME = "corrupt.example"
GARBAGE = "{not json"


def assert_names_path(done: subprocess.CompletedProcess[str], code: int, path: Path) -> None:
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert lines and all(line.startswith(("certman: ", "hint: ")) for line in lines), lines
    assert str(path) in done.stderr, done.stderr


def account_dir(keystore: Path, pebble: services.Pebble) -> Path:
    return keystore / "accounts" / ca_id(pebble.directory_url)


def cert_file(name: str) -> Callable[[Path, services.Pebble], Path]:
    return lambda keystore, _pebble: keystore / "certs" / NAME / name


def version_file(name: str) -> Callable[[Path, services.Pebble], Path]:
    return lambda keystore, _pebble: keystore / "certs" / NAME / "versions" / "000001" / name


FILES: dict[str, Callable[[Path, services.Pebble], Path]] = {
    "account key.pem": lambda keystore, pebble: account_dir(keystore, pebble) / "key.pem",
    "account.json": lambda keystore, pebble: account_dir(keystore, pebble) / "account.json",
    "spec.toml": cert_file("spec.toml"),
    "state.json": cert_file("state.json"),
    "meta.json": version_file("meta.json"),
    "index.json": lambda keystore, _pebble: keystore / "index.json",
}

# (file, content, command, exit code): issue and renew --force reach the CA; the others stay local.
CASES = [
    ("account key.pem", "garbage", "issue", 3),
    ("account key.pem", "garbage", "renew --force", 7),
    ("account.json", GARBAGE, "issue", 3),
    ("account.json", "[1, 2]", "issue", 3),
    ("account.json", GARBAGE, "renew --force", 7),
    ("spec.toml", "names = [", "show", 3),
    ("spec.toml", "names = [", "renew --force", 7),
    ("state.json", GARBAGE, "issue", 3),
    ("state.json", GARBAGE, "show", 3),
    ("meta.json", GARBAGE, "show", 3),
    ("meta.json", "[1, 2]", "show", 3),
    ("index.json", GARBAGE, "list", 3),
    ("index.json", GARBAGE, "renew", 3),
    ("index.json", GARBAGE, "issue", 3),
    ("index.json", GARBAGE, "show", 3),
]


def run(keystore: Path, pebble: services.Pebble, command: str) -> subprocess.CompletedProcess[str]:
    args = command.split()
    if args[0] == "issue":
        args += [*issue_flags(pebble), NAME]
    elif args[0] == "show":
        args.append(NAME)
    return certman(keystore, *args)


@pytest.mark.parametrize(("kind", "content", "command", "code"), CASES)
def test_a_corrupt_keystore_file_is_named_with_its_exit_code(
    pebble: services.Pebble, tmp_path: Path, kind: str, content: str, command: str, code: int
) -> None:
    keystore = tmp_path / "keystore"
    issue(keystore, pebble, NAME)
    path = FILES[kind](keystore, pebble)
    path.write_text(content)
    assert_names_path(run(keystore, pebble, command), code, path)


def _pending_order(keystore: Path, pebble: services.Pebble, *, order: str, key: str) -> Path:
    directory = keystore / "certs" / NAME
    (directory / "order.json").write_text(order)
    (directory / "order-key.pem").write_text(key)
    return directory


VALID_ORDER = json.dumps(
    {
        "order_url": "https://127.0.0.1:1/order/1",
        "server": "x",
        "identifiers": [NAME],
        "created_at": "2026-01-01T00:00:00Z",
    }
)


@pytest.mark.parametrize("command", ["issue", "renew --force"])
@pytest.mark.parametrize("broken", ["order.json", "order-key.pem"])
def test_a_corrupt_pending_order_is_named_with_its_exit_code(
    pebble: services.Pebble, tmp_path: Path, command: str, broken: str
) -> None:
    keystore = tmp_path / "keystore"
    issue(keystore, pebble, NAME)
    if broken == "order.json":
        directory = _pending_order(keystore, pebble, order=GARBAGE, key="unused")
    else:
        directory = _pending_order(keystore, pebble, order=VALID_ORDER, key="garbage")
    assert_names_path(run(keystore, pebble, command), 3 if command == "issue" else 7, directory / broken)


@pytest.mark.parametrize(("command", "code"), [("show", 3), ("renew", 7)])
def test_a_corrupt_revocation_marker_is_named_with_its_exit_code(
    pebble: services.Pebble, tmp_path: Path, command: str, code: int
) -> None:
    keystore = tmp_path / "keystore"
    issue(keystore, pebble, NAME)
    revoked = certman(keystore, "revoke", NAME)
    assert revoked.returncode == 0, revoked.stderr
    marker = keystore / "certs" / NAME / "revoked.json"
    marker.write_text(GARBAGE)
    assert_names_path(run(keystore, pebble, command), code, marker)


def test_a_corrupt_version_key_is_named_when_revoking_with_it(pebble: services.Pebble, tmp_path: Path) -> None:
    keystore = tmp_path / "keystore"
    issue(keystore, pebble, NAME)
    key = keystore / "certs" / NAME / "versions" / "000001" / "privkey.pem"
    key.write_text("garbage")
    done = certman(keystore, "revoke", "--reason", "keyCompromise", NAME)
    assert_names_path(done, 3, keystore / "live" / NAME / "privkey.pem")
    assert "garbage" not in done.stderr
