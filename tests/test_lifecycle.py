"""show, revoke and remove of stored certificates, against Pebble."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from click.testing import CliRunner
from fixtures.lifecycle import standalone_spec

from certman.cli import cli
from certman.errors import UsageError
from certman.issuance.issue import issue
from certman.keystore import RenewalState
from certman.lifecycle import describe, remove, revoke


def _tree(root):
    return sorted(
        (str(p.relative_to(root)), p.is_symlink() and str(p.readlink()))
        for p in root.rglob("*")
        # locks/ holds empty flock files; logs/ is the CLI's run log (docs/operations.md).
        if "locks" not in p.parts and "logs" not in p.parts
    )


def _cli(keystore, *args):
    return CliRunner().invoke(cli, ["--keystore", str(keystore.root), *args])


def test_show_lists_every_version_and_marks_the_live_one(keystore, pebble, agreed):
    spec = standalone_spec(pebble, "show.example")
    issue(spec, keystore, account=agreed)
    second = issue(spec, keystore, account=agreed)
    stored = RenewalState(consecutive_failures=1, last_error="the CA said no")
    keystore.write_state(spec.name, stored)

    report = describe(keystore, spec.name)

    assert [v.version for v in report.versions] == ["000001", "000002"]
    assert [v.is_live for v in report.versions] == [False, True]
    assert report.versions[1].meta.serial == second.serial
    assert report.identifiers == ("show.example",)
    assert report.spec["server"] == pebble.directory_url
    assert report.state == stored
    assert report.revocation is None


def test_show_json_carries_spec_state_and_versions(keystore, pebble, agreed):
    issue(standalone_spec(pebble, "json.example"), keystore, account=agreed)

    result = _cli(keystore, "show", "json.example", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["live_version"] == "000001"
    assert data["spec"]["identifiers"] == ["json.example"]
    assert data["versions"][0]["live"] is True


def test_show_gives_the_next_renewal_and_the_rule_behind_it(keystore, pebble, agreed):
    from certman.renewal.rules import lifetime_renew_at

    issued = issue(standalone_spec(pebble, "next.example"), keystore, account=agreed)
    entry = keystore.read_index()["next.example"]

    result = _cli(keystore, "show", "next.example")

    assert result.exit_code == 0, result.output
    due = lifetime_renew_at("next.example", entry)
    assert issued.not_before < due < issued.not_after
    assert f"renewal:  {due:%Y-%m-%d %H:%M UTC} (at most 1/3 of its lifetime left" in result.stdout


def test_show_of_an_unknown_name_exits_2_with_a_hint(keystore):
    result = _cli(keystore, "show", "nothing.example")

    assert result.exit_code == 2
    assert result.stderr.startswith("certman: no certificate named 'nothing.example'")
    assert "hint: see `certman list`" in result.stderr


def test_revoke_revokes_at_the_ca_and_marks_the_certificate(keystore, pebble, agreed):
    issued = issue(standalone_spec(pebble, "revoke.example"), keystore, account=agreed)

    result = revoke(keystore, "revoke.example", reason="keyCompromise")

    status = pebble.cert_status(issued.serial)
    assert status["Status"] == "Revoked"
    assert status["Reason"] == 1
    assert result.serial == issued.serial
    assert keystore.read_revocation("revoke.example").serial == issued.serial


def test_key_compromise_is_signed_by_the_certificate_key_other_reasons_by_the_account(keystore, pebble, agreed):
    issue(standalone_spec(pebble, "compromised.example"), keystore, account=agreed)
    issue(standalone_spec(pebble, "superseded.example"), keystore, account=agreed)

    compromised = revoke(keystore, "compromised.example", reason="keyCompromise")
    superseded = revoke(keystore, "superseded.example", reason="superseded")

    assert (compromised.signed_by, superseded.signed_by) == ("certificate key", "account")
    assert pebble.cert_status(superseded.serial)["Reason"] == 4


def test_revoking_twice_is_refused(keystore, pebble, agreed):
    issue(standalone_spec(pebble, "twice.example"), keystore, account=agreed)
    revoke(keystore, "twice.example")

    with pytest.raises(UsageError, match="already revoked"):
        revoke(keystore, "twice.example")


def test_show_says_a_revoked_certificate_is_not_renewed(keystore, pebble, agreed):
    issued = issue(standalone_spec(pebble, "shown-revoked.example"), keystore, account=agreed)
    revoke(keystore, "shown-revoked.example")

    result = _cli(keystore, "show", "shown-revoked.example")

    assert result.exit_code == 0, result.output
    assert f"REVOKED:  serial {issued.serial}" in result.stdout
    assert "not renewed until issued again" in result.stdout


def test_issuing_again_lifts_the_revocation_marker(keystore, pebble, agreed):
    spec = standalone_spec(pebble, "again.example")
    issue(spec, keystore, account=agreed)
    revoke(keystore, spec.name)

    issue(spec, keystore, account=agreed)

    assert keystore.read_revocation(spec.name) is None


def test_revoke_without_a_stored_account_signs_with_the_certificate_key(keystore, pebble, agreed):
    issued = issue(standalone_spec(pebble, "nokey.example"), keystore, account=agreed)
    shutil.rmtree(keystore.root / "accounts")

    result = revoke(keystore, "nokey.example", reason="superseded")

    assert result.signed_by == "certificate key"
    assert pebble.cert_status(issued.serial)["Status"] == "Revoked"


def test_cli_revoke_json_and_unknown_reason(keystore, pebble, agreed):
    issue(standalone_spec(pebble, "clirevoke.example"), keystore, account=agreed)

    bad = _cli(keystore, "revoke", "clirevoke.example", "--reason", "because")
    good = _cli(keystore, "revoke", "clirevoke.example", "--reason", "cessationOfOperation", "--json")

    assert bad.exit_code == 2
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["reason"] == "cessationOfOperation"


def test_remove_archives_the_certificate_and_drops_it_from_the_index(keystore, pebble, agreed):
    spec = standalone_spec(pebble, "remove.example")
    issued = issue(spec, keystore, account=agreed)
    leaf = issued.live.cert.read_bytes()

    result = remove(keystore, spec.name)

    assert spec.name not in keystore.read_index()
    assert not os.path.lexists(keystore.live(spec.name).directory)
    assert result.archived_to.parent == keystore.root / "archive"
    assert (result.archived_to / "versions" / issued.version / "cert.pem").read_bytes() == leaf
    assert (result.archived_to / "versions" / issued.version / "privkey.pem").stat().st_mode & 0o777 == 0o600


def test_remove_keeps_other_certificates_live(keystore, pebble, agreed):
    issue(standalone_spec(pebble, "keep.example"), keystore, account=agreed)
    issue(standalone_spec(pebble, "drop.example"), keystore, account=agreed)

    remove(keystore, "drop.example")

    assert list(keystore.read_index()) == ["keep.example"]
    assert keystore.live("keep.example").fullchain.exists()


def test_cli_remove_of_an_unknown_name_changes_nothing(keystore, pebble, agreed):
    issue(standalone_spec(pebble, "stays.example"), keystore, account=agreed)
    before = _tree(keystore.root)

    result = _cli(keystore, "remove", "other.example")

    assert result.exit_code == 2
    assert result.stderr.startswith("certman: no certificate named 'other.example'")
    assert _tree(keystore.root) == before


def test_cli_remove_json_names_the_archive(keystore, pebble, agreed):
    issue(standalone_spec(pebble, "cliremove.example"), keystore, account=agreed)

    result = _cli(keystore, "remove", "cliremove.example", "--json")

    assert result.exit_code == 0, result.output
    archived = json.loads(result.stdout)["archived_to"]
    assert archived.startswith(str(keystore.root / "archive" / "cliremove.example-"))
