"""CA fallback with two Pebbles, the first of them stopped."""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import pytest
from click.testing import CliRunner
from fixtures.lifecycle import standalone_spec

from certman.ca.accounts import AccountSettings, CAEndpoint, register_account
from certman.ca.eab import external_account
from certman.cli import cli
from certman.errors import ACMEError, SolverError
from certman.issuance.issue import issue
from certman.keystore import ca_id
from certman.lifecycle import revoke

# Seconds each CA gets: enough for Pebble to issue, short enough that a refused
# connection's retries end quickly.
TIMEOUT = 2


def _with_stopped_primary(pebble, stopped, name):
    spec = standalone_spec(pebble, name)
    return replace(
        spec,
        server=stopped.directory_url,
        ca_bundle=str(stopped.ca_bundle),
        fallback=({"server": pebble.directory_url, "ca_bundle": str(pebble.ca_bundle)},),
    )


def test_the_next_ca_issues_when_the_first_is_down(keystore, pebble, stopped_pebble, agreed):
    spec = _with_stopped_primary(pebble, stopped_pebble, "fallback.example")

    result = issue(spec, keystore, account=agreed, timeout=TIMEOUT)

    assert pebble.cert_status(result.serial)["Status"] == "Valid"
    assert keystore.read_index()["fallback.example"].server == pebble.directory_url
    assert keystore.account_cas() == [ca_id(pebble.directory_url)]


def test_after_a_fallback_the_spec_still_prefers_the_first_ca(keystore, pebble, stopped_pebble, agreed):
    spec = _with_stopped_primary(pebble, stopped_pebble, "order.example")

    issue(spec, keystore, account=agreed, timeout=TIMEOUT)

    assert keystore.read_spec("order.example") == spec


def test_a_working_first_ca_leaves_the_fallback_untouched(keystore, pebble, stopped_pebble, agreed):
    spec = replace(
        standalone_spec(pebble, "primary.example"),
        fallback=({"server": stopped_pebble.directory_url, "ca_bundle": str(stopped_pebble.ca_bundle)},),
    )

    issue(spec, keystore, account=agreed, timeout=TIMEOUT)

    assert keystore.account_cas() == [ca_id(pebble.directory_url)]


def test_when_every_ca_fails_the_error_names_each_and_nothing_is_stored(keystore, pebble, stopped_pebble, agreed):
    stopped = {"server": stopped_pebble.directory_url, "ca_bundle": str(stopped_pebble.ca_bundle)}
    spec = replace(_with_stopped_primary(pebble, stopped_pebble, "down.example"), fallback=(stopped,))

    with pytest.raises(ACMEError, match="every CA failed for down.example") as caught:
        issue(spec, keystore, account=agreed, timeout=TIMEOUT)

    assert caught.value.message.count(f"{stopped_pebble.directory_url}: cannot reach") == 2
    assert keystore.read_index() == {}


def test_a_solver_failure_does_not_move_to_the_next_ca(keystore, pebble, agreed):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        spec = replace(
            standalone_spec(pebble, "solver.example"),
            solvers=(
                replace(
                    standalone_spec(pebble, "x.example").solvers[0],
                    options={"address": "127.0.0.1", "port": holder.getsockname()[1]},
                ),
            ),
            fallback=({"server": "https://127.0.0.1:1/dir"},),
        )

        with pytest.raises(SolverError):
            issue(spec, keystore, account=agreed, timeout=TIMEOUT)


def test_spec_toml_keeps_the_fallback_list(pebble):
    spec = replace(standalone_spec(pebble, "toml.example"), fallback=({"server": "https://ca2.test/dir"},))

    assert type(spec).from_dict(spec.to_dict(), "test") == spec


def test_cli_fallback_server(tmp_path, pebble, stopped_pebble):
    bundle = tmp_path / "both.pem"
    bundle.write_bytes(stopped_pebble.ca_bundle.read_bytes() + pebble.ca_bundle.read_bytes())

    result = CliRunner().invoke(
        cli,
        [
            "--keystore",
            str(tmp_path / "ks"),
            "issue",
            "--server",
            stopped_pebble.directory_url,
            "--fallback-server",
            pebble.directory_url,
            "--ca-bundle",
            str(bundle),
            "--agree-tos",
            "--http-address",
            "127.0.0.1",
            "--http-port",
            str(pebble.http_port),
            "--timeout",
            str(TIMEOUT),
            "--json",
            "cli-fallback.example",
        ],
    )

    assert result.exit_code == 0, result.output
    assert pebble.cert_status(json.loads(result.stdout)["serial"])["Status"] == "Valid"


def test_fallback_to_a_ca_requiring_eab_uses_its_preregistered_account(keystore, stopped_pebble, eab_pebble, agreed):
    eab_ca = eab_pebble.pebble
    register_account(
        keystore,
        CAEndpoint(eab_ca.directory_url, str(eab_ca.ca_bundle)),
        AccountSettings(
            agree_tos=True, eab=external_account(eab_pebble.kid, env={"CERTMAN_EAB_HMAC_KEY": eab_pebble.hmac_key})
        ),
    )
    spec = _with_stopped_primary(eab_ca, stopped_pebble, "eab-fallback.example")

    result = issue(spec, keystore, account=agreed, timeout=TIMEOUT)

    assert eab_ca.cert_status(result.serial)["Status"] == "Valid"


def test_fallback_to_a_ca_requiring_eab_without_an_account_names_the_need(keystore, stopped_pebble, eab_pebble, agreed):
    spec = _with_stopped_primary(eab_pebble.pebble, stopped_pebble, "no-eab.example")

    with pytest.raises(ACMEError, match="requires external account binding"):
        issue(spec, keystore, account=agreed, timeout=TIMEOUT)
    assert keystore.account_cas() == []


def test_revoke_goes_to_the_fallback_ca_that_issued_the_certificate(keystore, pebble, stopped_pebble, agreed):
    spec = _with_stopped_primary(pebble, stopped_pebble, "revoke-fallback.example")
    issued = issue(spec, keystore, account=agreed, timeout=TIMEOUT)

    revoke(keystore, spec.name, timeout=TIMEOUT)

    assert pebble.cert_status(issued.serial)["Status"] == "Revoked"
