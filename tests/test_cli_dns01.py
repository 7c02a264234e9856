"""`certman issue` with DNS-01 from the command line and certman.toml, and `certman plugins`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import services
from click.testing import CliRunner
from fixtures.bind import HTTP01_NAME, Bind

from certman.cli import cli

WRONG_SECRET = "d3Jvbmcgc2VjcmV0IGZvciB0aGUgY2xpIHRlc3Q="


def dns_env(bind: Bind, tmp_path: Path, secret: str) -> dict[str, str]:
    secret_file = tmp_path / "tsig.secret"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    return {
        "CERTMAN_RFC2136_SERVER": bind.address,
        "CERTMAN_RFC2136_KEY_NAME": bind.key_name,
        "CERTMAN_RFC2136_SECRET_FILE": str(secret_file),
        "CERTMAN_DNS01_RESOLVERS": bind.address,
        "CERTMAN_DNS01_NAMESERVER_PORT": str(bind.port),
        "CERTMAN_DNS01_PROPAGATION_TIMEOUT": "10",
    }


def issue_args(pebble: services.Pebble, keystore: Path, *extra: str) -> list[str]:
    return [
        "--keystore",
        str(keystore),
        "issue",
        "--server",
        pebble.directory_url,
        "--ca-bundle",
        str(pebble.ca_bundle),
        "--agree-tos",
        *extra,
    ]


def test_issue_with_dns_provider_flag_reads_provider_settings_from_env(
    tmp_path: Path, dns_pebble: services.Pebble, bind: Bind
) -> None:
    result = CliRunner().invoke(
        cli,
        issue_args(dns_pebble, tmp_path / "ks", "--dns-provider", "rfc2136", "--json", "*.cli.example.test"),
        env=dns_env(bind, tmp_path, bind.key_secret),
    )
    assert result.exit_code == 0, result.output
    assert '"*.cli.example.test"' in result.stdout
    spec_text = (tmp_path / "ks" / "certs" / "_.cli.example.test" / "spec.toml").read_text()
    assert 'name = "dns-01"' in spec_text
    assert bind.key_secret not in spec_text


def test_a_wrong_tsig_secret_exits_5_with_one_clear_line_and_no_secret(
    tmp_path: Path, dns_pebble: services.Pebble, bind: Bind
) -> None:
    result = CliRunner().invoke(
        cli,
        issue_args(
            dns_pebble, tmp_path / "ks", "--solver", "dns-01", "--dns-provider", "rfc2136", "badsig.example.test"
        ),
        env=dns_env(bind, tmp_path, WRONG_SECRET),
    )
    assert result.exit_code == 5
    assert result.stderr.splitlines()[0].startswith("certman: rfc2136: ")
    assert "BADSIG" in result.stderr.splitlines()[0]
    assert result.stderr.splitlines()[1].startswith("hint: ")
    assert WRONG_SECRET not in result.output
    assert not (tmp_path / "ks" / "live" / "badsig.example.test").exists()


def test_solver_tables_in_the_config_choose_dns01_for_wildcards_only(
    tmp_path: Path, dns_pebble: services.Pebble, bind: Bind
) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(f"""
[[solver]]
name = "dns-01"
provider = "rfc2136"
match = ["*.{HTTP01_NAME}"]

[[solver]]
name = "standalone"
address = "127.0.0.1"
port = {dns_pebble.http_port}
""")
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config),
            *issue_args(dns_pebble, tmp_path / "ks", "--name", "mixed-cli", HTTP01_NAME, f"*.{HTTP01_NAME}"),
        ],
        env=dns_env(bind, tmp_path, bind.key_secret),
    )
    assert result.exit_code == 0, result.output
    spec_text = (tmp_path / "ks" / "certs" / "mixed-cli" / "spec.toml").read_text()
    assert 'name = "standalone"' in spec_text and 'name = "dns-01"' in spec_text


def test_plugins_lists_every_dns_provider() -> None:
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    listed = {line.split()[2] for line in result.stdout.splitlines() if line.startswith("dns provider")}
    assert listed == {"rfc2136", "exec", "lexicon"}


def test_plugins_shows_a_providers_settings_with_env_and_secret_marks() -> None:
    result = CliRunner().invoke(cli, ["plugins", "rfc2136"])
    assert result.exit_code == 0
    secret_line = next(line for line in result.stdout.splitlines() if line.startswith("key_secret"))
    assert "(secret)" in secret_line and "CERTMAN_RFC2136_SECRET" in secret_line


def test_plugins_json_carries_the_settings_help(tmp_path: Path) -> None:
    import json

    result = CliRunner().invoke(cli, ["plugins", "dns-01", "--json"])
    data: dict[str, Any] = json.loads(result.stdout)
    settings = {s["name"]: s for s in data["plugins"][0]["settings"]}
    assert settings["propagation_timeout"]["default"] == "120.0"
    assert settings["propagation_timeout"]["help"]


def test_an_unknown_dns_provider_is_a_usage_error(tmp_path: Path, dns_pebble: services.Pebble) -> None:
    result = CliRunner().invoke(
        cli, issue_args(dns_pebble, tmp_path / "ks", "--dns-provider", "nosuch", "x.example.test")
    )
    assert result.exit_code == 2
    assert "unknown dns provider 'nosuch'" in result.stderr


def test_a_dns_server_that_is_down_exits_5_with_a_clear_error(
    tmp_path: Path, dns_pebble: services.Pebble, bind: Bind
) -> None:
    down = f"127.0.0.1:{services.free_port()}"
    env = {**dns_env(bind, tmp_path, bind.key_secret), "CERTMAN_RFC2136_SERVER": down}
    result = CliRunner().invoke(
        cli, issue_args(dns_pebble, tmp_path / "ks", "--dns-provider", "rfc2136", "down.example.test"), env=env
    )
    assert result.exit_code == 5
    assert result.stderr.startswith(f"certman: rfc2136: {down} refused the connection")


def test_dns01_without_a_provider_says_how_to_choose_one(tmp_path: Path, dns_pebble: services.Pebble) -> None:
    result = CliRunner().invoke(
        cli,
        issue_args(dns_pebble, tmp_path / "ks", "--solver", "dns-01", "x.example.test"),
        env={"CERTMAN_DNS_PROVIDER": None},
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "certman: the dns-01 solver needs a DNS provider",
        "hint: pass --dns-provider rfc2136 (or exec, lexicon; see `certman plugins`), "
        "or set provider in its [[solver]] table",
    ]
