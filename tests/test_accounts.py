"""Account operations against Pebble: register, show, update, key rollover, deactivate, EAB."""

from __future__ import annotations

import json

import josepy as jose
import pytest
from click.testing import CliRunner
from fixtures.lifecycle import standalone_spec

from certman.ca.accounts import (
    AccountSettings,
    CAEndpoint,
    account_jwk,
    deactivate,
    key_change_request,
    register_account,
    rollover,
    show_account,
    update_email,
)
from certman.ca.eab import external_account
from certman.ca.session import AcmeSession
from certman.cli import cli
from certman.errors import ACMEError, UsageError
from certman.issuance.issue import issue
from certman.keys import generate_key, key_to_pem
from certman.keystore import AccountRecord, FileKeystore, ca_id


def test_register_stores_an_account_the_ca_reports_valid(keystore, ca, agreed):
    registered = register_account(keystore, ca, agreed)

    shown = show_account(keystore, ca)
    assert shown.status == "valid"
    assert shown.uri == registered.uri
    assert shown.contact == ("mailto:ops@example.org",)
    key_file = keystore.root / "accounts" / ca_id(ca.directory_url) / "key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600


def test_register_refuses_a_second_account_for_the_same_ca(keystore, ca, agreed):
    register_account(keystore, ca, agreed)

    with pytest.raises(UsageError, match="already stored"):
        register_account(keystore, ca, agreed)


def test_register_without_agreeing_to_the_terms_stores_nothing(keystore, ca):
    with pytest.raises(UsageError, match="--agree-tos|agreement"):
        register_account(keystore, ca, AccountSettings())

    assert keystore.account_cas() == []


def test_update_email_replaces_the_contacts_at_the_ca(keystore, ca, agreed):
    register_account(keystore, ca, agreed)

    update_email(keystore, ca, ("new@example.org", "second@example.org"))

    assert show_account(keystore, ca).contact == ("mailto:new@example.org", "mailto:second@example.org")


def test_rollover_keeps_the_account_url_and_the_ca_accepts_only_the_new_key(keystore, ca, agreed, pebble):
    before = register_account(keystore, ca, agreed)
    old_key_pem, _ = keystore.load_account(ca_id(ca.directory_url))

    after = rollover(keystore, ca)

    assert after.uri == before.uri
    assert after.key_thumbprint != before.key_thumbprint
    assert show_account(keystore, ca).status == "valid"
    old = AcmeSession(ca.directory_url, account_jwk(old_key_pem), ca_bundle=ca.ca_bundle, timeout=30)
    old.use_account(before.uri)
    with pytest.raises(ACMEError):
        old.query_account()
    assert not (keystore.root / "accounts" / ca_id(ca.directory_url) / "key.pem.next").exists()


def test_issue_after_rollover_uses_the_new_key(keystore, ca, agreed, pebble):
    register_account(keystore, ca, agreed)
    rollover(keystore, ca)

    result = issue(standalone_spec(pebble, "rolled.example"), keystore, timeout=60)

    assert pebble.cert_status(result.serial)["Status"] == "Valid"


def test_deactivate_archives_the_account_and_the_ca_refuses_it(keystore, ca, agreed):
    registered = register_account(keystore, ca, agreed)
    key_pem, _ = keystore.load_account(ca_id(ca.directory_url))

    result = deactivate(keystore, ca)

    assert result.status == "deactivated"
    assert keystore.account_cas() == []
    assert [p.name.split("-")[0] for p in (keystore.root / "archive" / "accounts").iterdir()] == [
        ca_id(ca.directory_url).split("-")[0]
    ]
    session = AcmeSession(ca.directory_url, account_jwk(key_pem), ca_bundle=ca.ca_bundle, timeout=30)
    session.use_account(registered.uri)
    with pytest.raises(ACMEError):
        session.query_account()


def test_a_ca_requiring_eab_refuses_registration_without_it(keystore, eab_pebble):
    ca = CAEndpoint(eab_pebble.pebble.directory_url, str(eab_pebble.pebble.ca_bundle))

    with pytest.raises(ACMEError, match="external account binding"):
        register_account(keystore, ca, AccountSettings(agree_tos=True))
    assert keystore.account_cas() == []


def test_eab_registration_with_the_hmac_key_from_the_environment(keystore, eab_pebble):
    ca = CAEndpoint(eab_pebble.pebble.directory_url, str(eab_pebble.pebble.ca_bundle))
    eab = external_account(eab_pebble.kid, env={"CERTMAN_EAB_HMAC_KEY": eab_pebble.hmac_key})

    register_account(keystore, ca, AccountSettings(agree_tos=True, eab=eab))

    assert show_account(keystore, ca).status == "valid"


def test_eab_with_a_wrong_hmac_key_is_refused_by_the_ca(keystore, eab_pebble):
    ca = CAEndpoint(eab_pebble.pebble.directory_url, str(eab_pebble.pebble.ca_bundle))
    wrong = jose.b64encode(b"0" * 32).decode()
    eab = external_account(eab_pebble.kid, env={"CERTMAN_EAB_HMAC_KEY": wrong})

    with pytest.raises(ACMEError):
        register_account(keystore, ca, AccountSettings(agree_tos=True, eab=eab))
    assert keystore.account_cas() == []


def test_eab_kid_without_a_key_is_a_usage_error():
    with pytest.raises(UsageError, match="needs its HMAC key"):
        external_account("kid-1", env={})


def test_cli_register_with_eab_key_file_keeps_the_key_out_of_output(tmp_path, eab_pebble):
    key_file = tmp_path / "hmac"
    key_file.write_text(eab_pebble.hmac_key + "\n")
    # A secret file others can read is refused (issue 12 kind 5).
    key_file.chmod(0o600)
    runner = CliRunner()

    result = runner.invoke(
        cli,
        [
            "--keystore",
            str(tmp_path / "ks"),
            "account",
            "register",
            "--server",
            eab_pebble.pebble.directory_url,
            "--ca-bundle",
            str(eab_pebble.pebble.ca_bundle),
            "--agree-tos",
            "--eab-kid",
            eab_pebble.kid,
            "--eab-hmac-key-file",
            str(key_file),
            "--json",
        ],
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "valid"
    assert eab_pebble.hmac_key not in result.output


def test_cli_account_show_without_an_account_exits_2_with_a_hint(tmp_path, pebble):
    result = CliRunner().invoke(
        cli,
        [
            "--keystore",
            str(tmp_path / "ks"),
            "account",
            "show",
            "--server",
            pebble.directory_url,
            "--ca-bundle",
            str(pebble.ca_bundle),
        ],
    )

    assert result.exit_code == 2
    assert result.stderr.splitlines()[0].startswith("certman: no account for")
    assert "certman account register" in result.stderr


def test_cli_account_show_json_matches_the_library(tmp_path, pebble, agreed):
    keystore = FileKeystore(tmp_path / "ks")
    ca = CAEndpoint(pebble.directory_url, str(pebble.ca_bundle))
    registered = register_account(keystore, ca, agreed)

    result = CliRunner().invoke(
        cli,
        [
            "--keystore",
            str(keystore.root),
            "account",
            "show",
            "--json",
            "--server",
            pebble.directory_url,
            "--ca-bundle",
            str(pebble.ca_bundle),
        ],
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) | {"created_at": None} == registered.to_dict() | {"created_at": None}


def test_cli_issue_registers_with_eab_on_first_use(tmp_path, eab_pebble, monkeypatch):
    monkeypatch.setenv("CERTMAN_EAB_HMAC_KEY", eab_pebble.hmac_key)
    pebble = eab_pebble.pebble

    result = CliRunner().invoke(
        cli,
        [
            "--keystore",
            str(tmp_path / "ks"),
            "issue",
            "--server",
            pebble.directory_url,
            "--ca-bundle",
            str(pebble.ca_bundle),
            "--agree-tos",
            "--eab-kid",
            eab_pebble.kid,
            "--http-address",
            "127.0.0.1",
            "--http-port",
            str(pebble.http_port),
            "--json",
            "eab.example",
        ],
    )

    assert result.exit_code == 0, result.output
    assert pebble.cert_status(json.loads(result.stdout)["serial"])["Status"] == "Valid"


def test_cli_rollover_and_deactivate_print_json(tmp_path, pebble, agreed):
    keystore = FileKeystore(tmp_path / "ks")
    ca = CAEndpoint(pebble.directory_url, str(pebble.ca_bundle))
    before = register_account(keystore, ca, agreed)
    flags = ["--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle), "--json"]

    rolled = CliRunner().invoke(cli, ["--keystore", str(keystore.root), "account", "rollover", *flags])
    gone = CliRunner().invoke(cli, ["--keystore", str(keystore.root), "account", "deactivate", "--yes", *flags])

    assert rolled.exit_code == 0, rolled.output
    assert json.loads(rolled.stdout)["uri"] == before.uri
    assert json.loads(rolled.stdout)["key_thumbprint"] != before.key_thumbprint
    assert gone.exit_code == 0, gone.output
    assert json.loads(gone.stdout)["status"] == "deactivated"


def test_show_offline_does_not_ask_the_ca(keystore, stopped_pebble):
    ca = CAEndpoint(stopped_pebble.directory_url, str(stopped_pebble.ca_bundle))
    keystore.save_account(
        ca_id(ca.directory_url),
        key_to_pem(generate_key("ecdsa-p256")),
        AccountRecord(uri="https://ca.test/acct/1", contact=("mailto:a@example.org",)),
    )

    shown = show_account(keystore, ca, ask_ca=False)

    assert shown.status is None
    assert shown.uri == "https://ca.test/acct/1"


def test_cli_deactivate_asks_first_and_a_no_keeps_the_account(tmp_path, pebble, agreed):
    keystore = FileKeystore(tmp_path / "ks")
    ca = CAEndpoint(pebble.directory_url, str(pebble.ca_bundle))
    register_account(keystore, ca, agreed)

    result = CliRunner().invoke(
        cli,
        [
            "--keystore",
            str(keystore.root),
            "account",
            "deactivate",
            "--server",
            pebble.directory_url,
            "--ca-bundle",
            str(pebble.ca_bundle),
        ],
        input="n\n",
    )

    assert result.exit_code == 2
    assert "certman: the account was not deactivated" in result.stderr
    assert show_account(keystore, ca).status == "valid"


def _interrupted_rollover(keystore, ca, *, reached_the_ca: bool) -> bytes:
    """The keystore as a rollover leaves it when killed after writing key.pem.next."""
    key_pem, data = keystore.load_account(ca_id(ca.directory_url))
    new_key = generate_key("ecdsa-p256")
    keystore.save_pending_account_key(ca_id(ca.directory_url), key_to_pem(new_key))
    if reached_the_ca:
        session = AcmeSession(ca.directory_url, account_jwk(key_pem), ca_bundle=ca.ca_bundle, timeout=30)
        session.use_account(data.uri)
        new_jwk = jose.JWKEC(key=new_key)
        session.change_account_key(key_change_request(session, data.uri, new_jwk), new_jwk)
    return key_to_pem(new_key)


def test_a_rollover_killed_after_the_ca_switched_keys_is_finished_on_next_use(keystore, ca, agreed):
    register_account(keystore, ca, agreed)
    new_pem = _interrupted_rollover(keystore, ca, reached_the_ca=True)

    shown = show_account(keystore, ca)

    assert shown.status == "valid"
    assert keystore.load_account(ca_id(ca.directory_url))[0] == new_pem
    assert keystore.load_pending_account_key(ca_id(ca.directory_url)) is None


def test_a_rollover_killed_before_the_ca_answered_keeps_the_old_key(keystore, ca, agreed):
    register_account(keystore, ca, agreed)
    old_pem, _ = keystore.load_account(ca_id(ca.directory_url))
    _interrupted_rollover(keystore, ca, reached_the_ca=False)

    assert show_account(keystore, ca).status == "valid"
    assert keystore.load_account(ca_id(ca.directory_url))[0] == old_pem
    assert keystore.load_pending_account_key(ca_id(ca.directory_url)) is None


@pytest.mark.parametrize("reached_the_ca", [True, False])
def test_issue_after_an_interrupted_rollover_finishes_it_and_signs_with_the_key_the_ca_accepts(
    keystore, ca, agreed, pebble, reached_the_ca
):
    # Unattended renewal runs no `certman account` command: issuance itself must settle
    # the half-done rollover, or every order is signed with a key the CA refuses.
    register_account(keystore, ca, agreed)
    old_pem, _ = keystore.load_account(ca_id(ca.directory_url))
    new_pem = _interrupted_rollover(keystore, ca, reached_the_ca=reached_the_ca)

    result = issue(standalone_spec(pebble, "interrupted.example"), keystore, timeout=60)

    assert pebble.cert_status(result.serial)["Status"] == "Valid"
    assert keystore.load_account(ca_id(ca.directory_url))[0] == (new_pem if reached_the_ca else old_pem)
    assert keystore.load_pending_account_key(ca_id(ca.directory_url)) is None
