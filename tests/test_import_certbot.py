"""certman import certbot, on config dirs made by real certbot runs against Pebble."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner
from cryptography import x509
from fixtures.certbot import certbot_standalone
from fixtures.lifecycle import standalone_spec
from fixtures.snapshot import snapshot

from certman.ca.accounts import CAEndpoint, register_account, show_account
from certman.cli import cli
from certman.importers.certbot import import_certbot
from certman.issuance.issue import issue
from certman.keystore import ca_id


def _serial(pem_path):
    return format(x509.load_pem_x509_certificate(pem_path.read_bytes()).serial_number, "x")


def _certbot_account_uri(config_dir):
    (regr,) = config_dir.glob("accounts/**/regr.json")
    return json.loads(regr.read_text())["uri"]


def test_every_archive_version_is_imported_and_certbots_live_one_is_live(keystore, certbot_dir):
    result = import_certbot(keystore, certbot_dir.config_dir)

    assert result.certificates_imported == {"cb.example": ["000001", "000002"], "web.example": ["000001"]}
    assert _serial(keystore.live("cb.example").cert) == _serial(certbot_dir.config_dir / "live/cb.example/cert.pem")
    assert keystore.live("cb.example").privkey.stat().st_mode & 0o777 == 0o600
    assert set(keystore.read_index()) == {"cb.example", "web.example"}


def test_the_spec_comes_from_the_renewal_conf(keystore, certbot_dir, certbot_pebble):
    result = import_certbot(keystore, certbot_dir.config_dir)

    standalone = keystore.read_spec("cb.example")
    webroot = keystore.read_spec("web.example")
    assert [i.value for i in standalone.identifiers] == ["cb.example", "www.cb.example"]
    assert standalone.key_type == "ecdsa-p256"
    assert standalone.server == certbot_pebble.directory_url
    assert [(s.name, dict(s.options)) for s in standalone.solvers] == [
        ("standalone", {"address": "127.0.0.1", "port": certbot_pebble.http_port})
    ]
    assert standalone.reloaders == ({"name": "command", "argv": ["/bin/sh", "-c", "echo deployed"]},)
    assert webroot.key_type == "rsa2048"
    assert [(s.name, dict(s.options)) for s in webroot.solvers] == [("webroot", {"path": str(certbot_dir.webroot)})]
    assert result.warnings == [
        (
            "cb.example: certbot pre-hook 'echo pre' was not imported; "
            "certman runs reloaders after storing, add a command reloader if needed"
        )
    ]


def test_the_account_keeps_its_url_and_certman_renews_through_it(keystore, certbot_dir, certbot_pebble):
    import_certbot(keystore, certbot_dir.config_dir, ca_bundle=str(certbot_pebble.ca_bundle))
    certbot_uri = _certbot_account_uri(certbot_dir.config_dir)

    renewed = issue(keystore.read_spec("cb.example"), keystore, timeout=60)

    assert keystore.account_cas() == [ca_id(certbot_pebble.directory_url)]
    assert keystore.load_account(ca_id(certbot_pebble.directory_url))[1].uri == certbot_uri
    ca = CAEndpoint(certbot_pebble.directory_url, str(certbot_pebble.ca_bundle))
    assert show_account(keystore, ca).status == "valid"
    assert certbot_pebble.cert_status(renewed.serial)["Status"] == "Valid"
    assert renewed.version == "000003"


def test_importing_again_changes_nothing(keystore, certbot_dir):
    import_certbot(keystore, certbot_dir.config_dir)
    before = snapshot(keystore.root, mtimes=True)

    again = import_certbot(keystore, certbot_dir.config_dir)

    assert again.certificates_imported == {}
    assert again.certificates_unchanged == ["cb.example", "web.example"]
    assert again.accounts_unchanged == [_certbot_account_uri(certbot_dir.config_dir)]
    assert snapshot(keystore.root, mtimes=True) == before


def test_certbots_files_are_left_untouched(keystore, certbot_dir):
    before = snapshot(certbot_dir.config_dir, mtimes=True)

    import_certbot(keystore, certbot_dir.config_dir)

    assert snapshot(certbot_dir.config_dir, mtimes=True) == before


def test_a_later_certbot_renewal_imports_only_the_new_version(keystore, certbot_pebble, tmp_path):
    certbot_standalone(certbot_pebble, tmp_path, "later.example")
    import_certbot(keystore, tmp_path / "conf")
    certbot_standalone(certbot_pebble, tmp_path, "later.example", extra=("--force-renewal",))

    result = import_certbot(keystore, tmp_path / "conf")

    assert result.certificates_imported == {"later.example": ["000002"]}
    assert _serial(keystore.live("later.example").cert) == _serial(tmp_path / "conf/live/later.example/cert.pem")


def test_cli_import_of_a_directory_that_is_not_certbots_exits_2(tmp_path):
    result = CliRunner().invoke(
        cli, ["--keystore", str(tmp_path / "ks"), "import", "certbot", "--config-dir", str(tmp_path)]
    )

    assert result.exit_code == 2
    assert result.stderr.startswith(f"certman: {tmp_path} is not a certbot config directory")


def test_cli_import_json(tmp_path, certbot_dir):
    result = CliRunner().invoke(
        cli,
        [
            "--keystore",
            str(tmp_path / "ks"),
            "import",
            "certbot",
            "--config-dir",
            str(certbot_dir.config_dir),
            "--json",
        ],
    )

    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.stdout)["certificates_imported"]) == ["cb.example", "web.example"]


def test_an_existing_certman_account_for_the_ca_is_not_replaced(keystore, certbot_dir, certbot_pebble, agreed):
    ca = CAEndpoint(certbot_pebble.directory_url, str(certbot_pebble.ca_bundle))
    mine = register_account(keystore, ca, agreed)

    result = import_certbot(keystore, certbot_dir.config_dir)

    assert keystore.load_account(ca_id(certbot_pebble.directory_url))[1].uri == mine.uri
    assert list(result.skipped) == [f"account {_certbot_account_uri(certbot_dir.config_dir)}"]


def test_a_lineage_with_an_authenticator_certman_lacks_is_skipped_with_the_reason(keystore, certbot_dir, tmp_path):
    copy = tmp_path / "conf"
    shutil.copytree(certbot_dir.config_dir, copy, symlinks=True)
    conf = copy / "renewal" / "web.example.conf"
    conf.write_text(conf.read_text().replace("authenticator = webroot", "authenticator = nginx"))

    result = import_certbot(keystore, copy)

    assert result.skipped == {
        "certificate web.example": "certbot authenticator 'nginx' has no certman equivalent to import"
    }
    assert list(result.certificates_imported) == ["cb.example"]
    assert "web.example" not in keystore.read_index()


def test_a_name_certman_already_manages_is_not_mixed_with_certbots(keystore, certbot_dir, certbot_pebble, agreed):
    issue(standalone_spec(certbot_pebble, "cb.example"), keystore, account=agreed)
    before = snapshot(keystore.root / "certs" / "cb.example", mtimes=True)

    result = import_certbot(keystore, certbot_dir.config_dir)

    assert result.skipped["certificate cb.example"].startswith("certman already manages a certificate named")
    assert snapshot(keystore.root / "certs" / "cb.example", mtimes=True) == before
