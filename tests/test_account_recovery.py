"""An account the CA forgot or another client deactivated: renewal replaces it unattended.

Certificates are issued by hand through the real ``certman`` program, the account is then
lost at the CA (a Pebble restarted at the same URLs, or a deactivation by another client),
and ``renew`` runs as the timer runs it: ``env -i PATH=/usr/bin:/bin`` from ``/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import services

from certman.ca.accounts import AccountSettings, CAEndpoint, account_jwk, register_account
from certman.ca.eab import external_account
from certman.ca.session import AcmeSession
from certman.keystore import FileKeystore, ca_id

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = ("/usr/bin/env", "-i", "PATH=/usr/bin:/bin")


def by_hand(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    return subprocess.run([CERTMAN, *args], env=environ, capture_output=True, text=True, timeout=120)


def from_timer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TIMER_ENV, CERTMAN, *args], cwd="/", capture_output=True, text=True, timeout=120)


def issue_by_hand(keystore: Path, pebble: services.Pebble, *names: str) -> None:
    for name in names:
        done = by_hand(
            "--keystore",
            str(keystore),
            "issue",
            name,
            "--server",
            pebble.directory_url,
            "--ca-bundle",
            str(pebble.ca_bundle),
            "--agree-tos",
            "--email",
            "ops@example.com",
            "--http-address",
            "127.0.0.1",
            "--http-port",
            str(pebble.http_port),
        )
        assert done.returncode == 0, done.stderr


def account_uri(keystore: Path, directory_url: str) -> str:
    stored = FileKeystore(keystore).load_account(ca_id(directory_url))
    assert stored is not None
    return stored[1].uri


def archived_accounts(keystore: Path) -> list[str]:
    archive = keystore / "archive" / "accounts"
    return sorted(p.name for p in archive.iterdir()) if archive.exists() else []


def deactivate_elsewhere(keystore: Path, directory_url: str, ca_bundle: Path) -> None:
    """Deactivate the stored account as another ACME client holding its key would."""
    stored = FileKeystore(keystore).load_account(ca_id(directory_url))
    assert stored is not None
    session = AcmeSession(directory_url, account_jwk(stored[0]), ca_bundle=str(ca_bundle))
    session.use_account(stored[1].uri)
    assert session.deactivate_account().body.status == "deactivated"


def renew_all_from_timer(keystore: Path) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    done = from_timer("--keystore", str(keystore), "renew", "--force", "--jobs", "3", "--json")
    return done, json.loads(done.stdout)["certificates"] if done.stdout else []


def test_after_a_ca_reset_the_timer_registers_a_new_account_and_renews(tmp_path: Path):
    keystore = tmp_path / "ks"
    workdir = tmp_path / "pebble"
    names = ("reset-a.example", "reset-b.example", "reset-c.example")
    with services.start_pebble(workdir) as before:
        issue_by_hand(keystore, before, *names)
        old_uri = account_uri(keystore, before.directory_url)
    listen_port = urlsplit(before.directory_url).port
    with services.start_pebble(workdir, listen_port=listen_port, http_port=before.http_port) as after:
        assert after.directory_url == before.directory_url
        done, results = renew_all_from_timer(keystore)
        assert done.returncode == 0, done.stderr
        assert sorted((r["name"], r["action"]) for r in results) == [(n, "renewed") for n in names]
        assert "Traceback" not in done.stderr
        assert f"the account {old_uri} is gone" in done.stderr
        new_uri = account_uri(keystore, after.directory_url)
        assert new_uri != old_uri
        # One new account for the three certificates renewed in parallel, one archived.
        assert len(archived_accounts(keystore)) == 1
        assert archived_accounts(keystore)[0].startswith(ca_id(after.directory_url))
        stored = FileKeystore(keystore).load_account(ca_id(after.directory_url))
        assert stored is not None and stored[1].contact == ("mailto:ops@example.com",)


def test_an_account_deactivated_by_another_client_is_replaced_by_the_next_renewal(tmp_path: Path, pebble):
    keystore = tmp_path / "ks"
    issue_by_hand(keystore, pebble, "deactivated.example")
    old_uri = account_uri(keystore, pebble.directory_url)
    deactivate_elsewhere(keystore, pebble.directory_url, pebble.ca_bundle)

    done, results = renew_all_from_timer(keystore)
    assert done.returncode == 0, done.stderr
    assert [(r["name"], r["action"]) for r in results] == [("deactivated.example", "renewed")]
    assert f"the account {old_uri} is gone" in done.stderr
    assert account_uri(keystore, pebble.directory_url) != old_uri
    assert len(archived_accounts(keystore)) == 1


def test_account_register_new_archives_the_stored_account_and_registers_another(tmp_path: Path, pebble):
    keystore = tmp_path / "ks"
    server = ("--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle))
    done = by_hand("--keystore", str(keystore), "account", "register", *server, "--agree-tos", "--json")
    assert done.returncode == 0, done.stderr
    old_uri = json.loads(done.stdout)["uri"]

    again = by_hand("--keystore", str(keystore), "account", "register", *server, "--agree-tos")
    assert again.returncode == 2
    assert "hint: " in again.stderr and "certman account register --new" in again.stderr

    done = by_hand("--keystore", str(keystore), "account", "register", "--new", *server, "--agree-tos", "--json")
    assert done.returncode == 0, done.stderr
    new = json.loads(done.stdout)
    assert new["uri"] != old_uri and new["status"] == "valid"
    assert account_uri(keystore, pebble.directory_url) == new["uri"]
    assert len(archived_accounts(keystore)) == 1
    shown = by_hand("--keystore", str(keystore), "account", "show", *server, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "valid"


def test_a_lost_account_at_an_eab_ca_fails_with_the_command_to_register_again(tmp_path: Path, eab_pebble):
    ca = eab_pebble.pebble
    keystore = tmp_path / "ks"
    eab = external_account(eab_pebble.kid, env={"CERTMAN_EAB_HMAC_KEY": eab_pebble.hmac_key})
    endpoint = CAEndpoint(ca.directory_url, str(ca.ca_bundle))
    old = register_account(FileKeystore(keystore), endpoint, AccountSettings("ops@example.com", True, eab))
    deactivate_elsewhere(keystore, ca.directory_url, ca.ca_bundle)

    done = from_timer(
        "--keystore",
        str(keystore),
        "issue",
        "eab-lost.example",
        "--server",
        ca.directory_url,
        "--ca-bundle",
        str(ca.ca_bundle),
        "--http-address",
        "127.0.0.1",
        "--http-port",
        str(ca.http_port),
    )
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr
    assert "certman: " in done.stderr and "requires external account binding" in done.stderr
    command = (
        f"hint: register a new account: certman account register --new --server {ca.directory_url} "
        f"--ca-bundle {ca.ca_bundle} --email ops@example.com --agree-tos --eab-kid KID --eab-hmac-key-file FILE"
    )
    assert command in done.stderr
    assert eab_pebble.hmac_key not in done.stderr
    # Nothing was replaced: the old account stays until the operator runs the command.
    assert account_uri(keystore, ca.directory_url) == old.uri
    assert archived_accounts(keystore) == []

    key_file = tmp_path / "eab.key"
    key_file.write_text(eab_pebble.hmac_key)
    key_file.chmod(0o600)
    args = command.removeprefix("hint: register a new account: certman ").split()
    args[args.index("KID")] = eab_pebble.kid
    args[args.index("FILE")] = str(key_file)
    done = by_hand("--keystore", str(keystore), *args)
    assert done.returncode == 0, done.stderr
    assert account_uri(keystore, ca.directory_url) != old.uri
    assert len(archived_accounts(keystore)) == 1
