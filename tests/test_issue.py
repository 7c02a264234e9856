"""`certman issue` against a real Pebble: what ends up in the keystore."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import services
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from fixtures.cli import CertmanRun, issue_flags
from fixtures.snapshot import snapshot


@pytest.fixture
def umask_000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def live_dir(keystore: Path, name: str) -> Path:
    return keystore / "live" / name


def assert_key_matches_cert(directory: Path) -> x509.Certificate:
    key = serialization.load_pem_private_key((directory / "privkey.pem").read_bytes(), None)
    leaf = x509.load_pem_x509_certificates((directory / "fullchain.pem").read_bytes())[0]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == leaf.public_key().public_bytes(
        serialization.Encoding.DER, spki
    )
    return leaf


def test_standalone_issue_makes_a_live_version_whose_key_matches(certman: CertmanRun, pebble: services.Pebble) -> None:
    result = certman("issue", *issue_flags(pebble), "solo.example", "www.solo.example")
    assert result.exit_code == 0, result.output
    link = live_dir(certman.keystore, "solo.example")
    assert os.readlink(link) == "../certs/solo.example/versions/000001"
    leaf = assert_key_matches_cert(link)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["solo.example", "www.solo.example"]


def test_issued_chain_verifies_up_to_pebbles_root(certman: CertmanRun, pebble: services.Pebble) -> None:
    assert certman("issue", *issue_flags(pebble), "chain.example").exit_code == 0
    chain = x509.load_pem_x509_certificates(
        (live_dir(certman.keystore, "chain.example") / "fullchain.pem").read_bytes()
    )
    root = x509.load_pem_x509_certificate(pebble.root_pem().encode())
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([root]))
        .build_server_verifier(x509.DNSName("chain.example"))
    )
    verified = verifier.verify(chain[0], chain[1:])
    assert verified[-1] == root


def test_webroot_issue_is_served_by_a_real_http_server(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path
) -> None:
    webroot = tmp_path / "www"
    webroot.mkdir()
    server = services.Service(
        "http.server",
        [
            sys.executable,
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
            str(webroot),
            str(pebble.http_port),
        ],
        tmp_path / "http.log",
    )
    with services.running(server, lambda: _port_open(pebble.http_port)):
        result = certman("issue", *issue_flags(pebble), "--solver", "webroot", "--webroot", str(webroot), "web.example")
    assert result.exit_code == 0, result.output
    assert_key_matches_cert(live_dir(certman.keystore, "web.example"))
    # The challenge file and the directories certman created are gone again.
    assert list(webroot.iterdir()) == []
    assert "GET /.well-known/acme-challenge/" in server.log_text()


def test_files_and_directories_get_their_modes_whatever_the_umask(
    certman: CertmanRun, pebble: services.Pebble, umask_000: None
) -> None:
    assert certman("issue", *issue_flags(pebble), "modes.example").exit_code == 0
    modes = {
        str(p.relative_to(certman.keystore)): stat.S_IMODE(p.lstat().st_mode)
        for p in certman.keystore.rglob("*")
        if not p.is_symlink()
    }
    version = "certs/modes.example/versions/000001"
    assert modes[f"{version}/privkey.pem"] == 0o600
    assert modes[f"{version}/combined.pem"] == 0o600
    assert modes[f"{version}/fullchain.pem"] == 0o644
    assert stat.S_IMODE(certman.keystore.stat().st_mode) == 0o700
    directories = [p for p in certman.keystore.rglob("*") if p.is_dir() and not p.is_symlink()]
    assert directories and all(modes[str(d.relative_to(certman.keystore))] == 0o700 for d in directories)
    account_keys = list((certman.keystore / "accounts").glob("*/key.pem"))
    assert len(account_keys) == 1 and modes[str(account_keys[0].relative_to(certman.keystore))] == 0o600


def test_spec_records_how_to_reissue(certman: CertmanRun, pebble: services.Pebble) -> None:
    assert (
        certman("issue", *issue_flags(pebble), "--key-type", "rsa2048", "--name", "named", "spec.example").exit_code
        == 0
    )
    spec = tomllib.loads((certman.keystore / "certs" / "named" / "spec.toml").read_text())
    assert spec["identifiers"] == ["spec.example"]
    assert spec["key_type"] == "rsa2048"
    assert spec["server"] == pebble.directory_url
    assert spec["solver"] == [{"name": "standalone", "address": "127.0.0.1", "port": pebble.http_port}]


def test_index_lists_the_live_version(certman: CertmanRun, pebble: services.Pebble) -> None:
    assert certman("issue", *issue_flags(pebble), "index.example").exit_code == 0
    entry = json.loads((certman.keystore / "index.json").read_text())["certificates"]["index.example"]
    leaf = assert_key_matches_cert(live_dir(certman.keystore, "index.example"))
    assert entry["serial"] == format(leaf.serial_number, "x")
    assert entry["version"] == "000001"
    assert entry["identifiers"] == ["index.example"]


def test_account_is_registered_once_and_reused(certman: CertmanRun, pebble: services.Pebble) -> None:
    assert certman("issue", *issue_flags(pebble), "acct1.example").exit_code == 0
    account_json = next((certman.keystore / "accounts").glob("*/account.json"))
    before = account_json.read_bytes()
    assert certman("issue", *issue_flags(pebble), "acct2.example").exit_code == 0
    assert account_json.read_bytes() == before
    assert len(list((certman.keystore / "accounts").iterdir())) == 1


def test_reissue_adds_a_version_and_moves_the_live_link(certman: CertmanRun, pebble: services.Pebble) -> None:
    assert certman("issue", *issue_flags(pebble), "again.example").exit_code == 0
    first = assert_key_matches_cert(live_dir(certman.keystore, "again.example")).serial_number
    assert certman("issue", *issue_flags(pebble), "again.example").exit_code == 0
    assert os.readlink(live_dir(certman.keystore, "again.example")) == "../certs/again.example/versions/000002"
    second = assert_key_matches_cert(live_dir(certman.keystore, "again.example")).serial_number
    assert second != first
    assert (certman.keystore / "certs/again.example/versions/000001/fullchain.pem").exists()


def test_failure_mid_issue_leaves_the_keystore_unchanged(certman: CertmanRun, pebble: services.Pebble) -> None:
    assert certman("issue", *issue_flags(pebble), "keep.example").exit_code == 0
    before = snapshot(certman.keystore)
    # Past the local checks and the order: the solver fails when it presents. The new name
    # needs a validation even when Pebble reuses keep.example's (PEBBLE_AUTHZREUSE=0 still
    # reuses about 1 in 100: Pebble makes a new authorization only when rand.Intn(100) > 0).
    failing = ["--solver", "dns-01", "--dns-provider", "exec"]
    result = certman(
        "issue",
        *issue_flags(pebble),
        *failing,
        "keep.example",
        "never-validated.keep.example",
        env={"CERTMAN_EXEC_PROGRAM": "/bin/false"},
    )
    assert result.exit_code == 5, result.output
    assert snapshot(certman.keystore) == before


def test_valid_authorizations_are_reused_without_starting_a_solver(certman: CertmanRun, tmp_path: Path) -> None:
    # Its own Pebble: the session one reuses no authorization, so every other order validates.
    with services.start_pebble(tmp_path / "pebble", env={"PEBBLE_AUTHZREUSE": "100"}) as reusing:
        assert certman("issue", *issue_flags(reusing), "reuse.example").exit_code == 0
        # A solver that passes the local checks but fails once started: any start fails the run.
        failing = ["--solver", "dns-01", "--dns-provider", "exec"]
        result = certman(
            "issue", *issue_flags(reusing), *failing, "reuse.example", env={"CERTMAN_EXEC_PROGRAM": "/bin/false"}
        )
    assert result.exit_code == 0, result.output
    assert os.readlink(live_dir(certman.keystore, "reuse.example")).endswith("000002")


def test_config_file_holds_settings_and_flags_win(certman: CertmanRun, pebble: services.Pebble, tmp_path: Path) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(
        f'server = "{pebble.directory_url}"\nca_bundle = "{pebble.ca_bundle}"\n'
        f'agree_tos = true\nhttp_address = "127.0.0.1"\nhttp_port = {pebble.http_port}\n'
        f'key_type = "rsa2048"\n'
    )
    result = certman("--config", str(config), "issue", "--key-type", "ecdsa-p384", "conf.example")
    assert result.exit_code == 0, result.output
    spec = tomllib.loads((certman.keystore / "certs/conf.example/spec.toml").read_text())
    assert spec["key_type"] == "ecdsa-p384"
    assert spec["server"] == pebble.directory_url


def test_list_shows_a_table_and_json(certman: CertmanRun, pebble: services.Pebble) -> None:
    assert certman("issue", *issue_flags(pebble), "list.example").exit_code == 0
    # Wide enough for every column (issue 14: narrower terminals drop some, see test_cli_output).
    table = certman("list", env={"COLUMNS": "200"}).output.splitlines()
    assert table[0].split() == [
        *["NAME", "STATUS", "DAYS", "LEFT", "EXPIRES", "IDENTIFIERS", "ISSUER", "KEY", "TYPE"],
    ]
    row = table[1].split()
    assert (row[:3], row[6]) == (["list.example", "ok", row[2]], "list.example") and 88 <= int(row[2]) <= 90
    data = json.loads(certman("list", "--json").output)
    (entry,) = data["certificates"]
    assert entry["name"] == "list.example"
    assert entry["key_type"] == "ecdsa-p256"
    assert 88 <= entry["days_left"] <= 90
    assert entry["issuer"].startswith("Pebble Intermediate CA")


def test_help_imports_neither_acme_nor_cryptography() -> None:
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['certman', '--help']\n"
        "try:\n    runpy.run_module('certman', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'acme', 'cryptography', 'josepy'})\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "Commands:" in out
    assert out.strip().endswith("HEAVY []")


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_keystore_can_be_given_after_the_subcommand(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    assert certman("issue", "--keystore", str(elsewhere), *issue_flags(pebble), "after.example").exit_code == 0
    assert (elsewhere / "live" / "after.example" / "fullchain.pem").exists()
    assert "after.example" in certman("list", "--keystore", str(elsewhere)).stdout
    assert not (certman.keystore / "live" / "after.example").exists()
