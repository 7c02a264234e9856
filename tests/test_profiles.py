"""--profile: checked against the directory's meta.profiles and sent in newOrder."""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner
from fixtures.fault_proxy import NEW_ORDER
from fixtures.lifecycle import standalone_spec

from certman.cli import cli
from certman.errors import UsageError
from certman.issuance.issue import issue


def _through_proxy(pebble, proxy, name, profile):
    return replace(
        standalone_spec(pebble, name), server=proxy.directory_url, ca_bundle=str(proxy.ca_bundle), profile=profile
    )


def test_a_listed_profile_is_sent_in_new_order(keystore, pebble, profiles_proxy, agreed):
    spec = _through_proxy(pebble, profiles_proxy, "profile.example", "shortlived")

    result = issue(spec, keystore, account=agreed)

    assert pebble.cert_status(result.serial)["Status"] == "Valid"
    sent = [p for p in profiles_proxy.new_orders() if p["identifiers"] == [{"type": "dns", "value": "profile.example"}]]
    assert [p.get("profile") for p in sent] == ["shortlived"]


def test_an_unlisted_profile_is_refused_before_any_order(keystore, pebble, profiles_proxy, agreed):
    spec = _through_proxy(pebble, profiles_proxy, "unlisted.example", "tlsserver")

    with pytest.raises(UsageError, match="has no profile 'tlsserver'") as caught:
        issue(spec, keystore, account=agreed)

    assert "classic" in caught.value.hint and "shortlived" in caught.value.hint
    assert not any(p["identifiers"][0]["value"] == "unlisted.example" for p in profiles_proxy.sent(NEW_ORDER))
    assert keystore.read_index() == {}


def test_a_ca_without_profiles_gives_a_clear_error(tmp_path, pebble):
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
            "--http-address",
            "127.0.0.1",
            "--http-port",
            str(pebble.http_port),
            "--profile",
            "classic",
            "noprofiles.example",
        ],
    )

    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"certman: the CA at {pebble.directory_url} does not offer "
        "certificate profiles, so --profile classic cannot be used"
    )
