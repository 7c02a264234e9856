"""Verify: the served leaf must be the stored one, from the library and from `certman verify`."""

from __future__ import annotations

import json

import pytest
import services
from click.testing import CliRunner
from fixtures.proxies import deployment_of, nginx_server_block, tls_ready

from certman.cli import cli
from certman.deploy.served import Endpoint, server_name_for, verify_served
from certman.errors import ConfigError, ReloadVerifyFailed


@pytest.mark.parametrize(
    "text, endpoint",
    [
        ("127.0.0.1:443", Endpoint("127.0.0.1", 443)),
        ("[::1]:8443", Endpoint("::1", 8443)),
        ("www.example@127.0.0.1:443", Endpoint("127.0.0.1", 443, "www.example")),
    ],
)
def test_endpoints_parse_from_host_port_with_an_optional_sni(text, endpoint):
    assert Endpoint.parse(text) == endpoint
    assert str(endpoint) == text


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:http", ":443", "127.0.0.1:70000"])
def test_a_malformed_endpoint_is_a_config_error(text):
    with pytest.raises(ConfigError):
        Endpoint.parse(text)


@pytest.fixture
def served_by_nginx(issue_cert, start_nginx):
    """a.example issued and served by nginx; returns (issue result, endpoint)."""
    endpoint = Endpoint("127.0.0.1", services.free_port())
    first = issue_cert("a.example", reloaders=({"name": "nginx", "verify": [str(endpoint)]},))
    start_nginx(nginx_server_block(endpoint.port, "a.example", first.live), tls_ready(endpoint, "a.example"))
    return first, endpoint


def test_a_proxy_still_serving_the_old_leaf_fails_verification_showing_both_serials(served_by_nginx, issue_cert):
    first, endpoint = served_by_nginx
    second = issue_cert("a.example")

    with pytest.raises(ReloadVerifyFailed) as failure:
        verify_served(deployment_of(second), [endpoint], timeout=0.2)

    assert f"serves serial {first.serial}, stored is {second.serial}" in failure.value.message
    assert failure.value.exit_code == 6


def test_an_endpoint_nobody_listens_on_fails_verification(issue_cert):
    result = issue_cert("a.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())

    with pytest.raises(ReloadVerifyFailed) as failure:
        verify_served(deployment_of(result), [endpoint], timeout=0.2)

    assert "could not fetch its certificate (Connection refused)" in failure.value.message


def run_cli(keystore, *args):
    return CliRunner().invoke(cli, ["--keystore", str(keystore.root), *args])


def test_cli_verify_uses_the_endpoints_of_the_certificates_reloaders(served_by_nginx, keystore):
    first, endpoint = served_by_nginx

    result = run_cli(keystore, "verify", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "name": "a.example",
            "endpoint": str(endpoint),
            "stored_serial": first.serial,
            "served_serial": first.serial,
            "ok": True,
            "error": None,
        }
    ]


def test_cli_verify_exits_6_with_both_serials_when_the_proxy_was_not_reloaded(served_by_nginx, issue_cert, keystore):
    first, endpoint = served_by_nginx
    second = issue_cert("a.example")

    result = run_cli(keystore, "verify", "a.example", "--endpoint", str(endpoint), "--timeout", "0.2")

    assert result.exit_code == 6
    assert "MISMATCH" in result.stdout
    assert result.stderr.splitlines()[0] == (
        f"certman: a.example: {endpoint} serves serial {first.serial}, stored is {second.serial}"
    )
    assert result.stderr.splitlines()[1].startswith("hint: ")


def test_cli_verify_without_any_endpoint_is_a_usage_error(issue_cert, keystore):
    issue_cert("a.example")

    result = run_cli(keystore, "verify", "a.example")

    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "certman: no endpoint to verify for a.example"


def test_cli_verify_of_an_unknown_name_is_a_usage_error(issue_cert, keystore):
    issue_cert("a.example")

    result = run_cli(keystore, "verify", "b.example", "--endpoint", "127.0.0.1:1")

    assert result.exit_code == 2
    assert "no certificate named 'b.example'" in result.stderr


def test_an_ip_certificate_is_verified_without_sni(issue_cert, start_nginx):
    result = issue_cert("127.0.0.1")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    start_nginx(nginx_server_block(endpoint.port, "_", result.live), tls_ready(endpoint))

    checks = verify_served(deployment_of(result), [endpoint])

    assert server_name_for(deployment_of(result), endpoint) is None
    assert [c.served_serial for c in checks] == [result.serial]
