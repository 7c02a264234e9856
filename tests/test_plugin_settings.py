"""Plugin settings from options, env and secret files; the registry's third-party and duplicate rules."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from certman.errors import ConfigError
from certman.log import redact
from certman.plugins import registry as plugins
from certman.plugins.settings import setting, settings_from


@dataclass(frozen=True)
class DemoSettings:
    token: str = setting(help="API token.", env="CERTMAN_DEMO_TOKEN", secret=True)
    retries: int = setting(help="How often to retry.", env="CERTMAN_DEMO_RETRIES", default=3)
    zones: tuple[str, ...] = setting(help="Zones.", env="CERTMAN_DEMO_ZONES", default=())


def test_an_option_wins_over_the_environment() -> None:
    settings = settings_from(
        DemoSettings,
        {"token": "tok-option", "retries": 5},
        plugin="demo",
        env={"CERTMAN_DEMO_TOKEN": "tok-env", "CERTMAN_DEMO_RETRIES": "9"},
    )
    assert (settings.token, settings.retries) == ("tok-option", 5)


def test_a_secret_is_read_from_the_file_named_by_its_FILE_variable(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok-from-file\n")
    (tmp_path / "token").chmod(0o600)
    settings = settings_from(DemoSettings, {}, plugin="demo", env={"CERTMAN_DEMO_TOKEN_FILE": str(tmp_path / "token")})
    assert settings.token == "tok-from-file"


def test_a_secret_is_read_from_the_file_named_by_its_file_option(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok-option-file")
    (tmp_path / "token").chmod(0o600)
    settings = settings_from(DemoSettings, {"token_file": str(tmp_path / "token")}, plugin="demo", env={})
    assert settings.token == "tok-option-file"


def test_a_loaded_secret_is_redacted_and_left_out_of_the_repr() -> None:
    settings = settings_from(DemoSettings, {}, plugin="demo", env={"CERTMAN_DEMO_TOKEN": "tok-redact-me"})
    assert "tok-redact-me" not in repr(settings)
    assert redact("sent tok-redact-me") == "sent [redacted]"


def test_a_list_setting_accepts_comma_separated_env() -> None:
    settings = settings_from(DemoSettings, {"token": "t-list"}, plugin="demo", env={"CERTMAN_DEMO_ZONES": "a, b"})
    assert settings.zones == ("a", "b")


def test_an_unknown_option_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown option") as raised:
        settings_from(DemoSettings, {"token": "t-unknown", "retry": 1}, plugin="demo", env={})
    assert "retries" in (raised.value.hint or "")


def test_a_bad_value_of_a_secret_is_reported_without_the_value() -> None:
    with pytest.raises(ConfigError) as raised:
        settings_from(DemoSettings, {"token": ["tok-not-a-string"]}, plugin="demo", env={})
    assert "tok-not-a-string" not in raised.value.message


def _install_dist(site: Path, name: str, entry_points: str) -> None:
    dist_info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(entry_points)


def _registry_in(site: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that also sees the distributions installed in ``site``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)


def test_a_third_party_dns_provider_is_found_through_its_entry_point(tmp_path: Path) -> None:
    _install_dist(
        tmp_path, "acme-dns-extra", "[certman.dns_providers]\nextra = certman.solvers.dns01.exec:ExecProvider\n"
    )
    result = _registry_in(
        tmp_path,
        "from certman.plugins import registry as plugins\n"
        "print(plugins.available('dns_providers')['extra'].distribution)",
    )
    assert result.stdout.strip() == "acme-dns-extra", result.stderr


def test_a_provider_name_claimed_twice_is_an_error_naming_both_packages(tmp_path: Path) -> None:
    _install_dist(tmp_path, "rogue-dns", "[certman.dns_providers]\nrfc2136 = rogue_dns:Provider\n")
    result = _registry_in(
        tmp_path,
        "from certman.plugins import registry as plugins\n"
        "try:\n    plugins.available('dns_providers')\n"
        "except Exception as exc:\n    print(exc)",
    )
    assert "claimed by both certman and rogue-dns" in result.stdout, result.stderr


@pytest.mark.parametrize(
    ("kind", "name", "options", "message"),
    [
        ("solvers", "standalone", {"port": 0}, "standalone solver: port must be an integer from 1 to 65535, not 0"),
        ("solvers", "tls-alpn-01", {"port": "443x"}, "tls-alpn-01 solver: option port = '443x' is not a valid integer"),
        (
            "solvers",
            "standalone",
            {"connection_timeout": 0},
            "standalone solver: connection_timeout must be a positive",
        ),
        ("solvers", "webroot", {}, "webroot solver: missing required setting path"),
        ("reloaders", "nginx", {"timeout": -1}, "nginx reloader: timeout must be a positive number, not -1"),
        (
            "reloaders",
            "haproxy",
            {"command": "systemctl reload haproxy"},
            "haproxy reloader: command must be a non-empty",
        ),
        ("reloaders", "command", {"argv": []}, "command reloader: argv must be a non-empty list of strings, not []"),
        (
            "reloaders",
            "traefik",
            {"path": "/etc/traefik/certman.yaml"},
            "traefik reloader: /etc/traefik/certman.yaml must",
        ),
        ("reloaders", "caddy", {"admin": "localhost"}, "caddy reloader: admin must be host:port"),
        ("reloaders", "caddy", {"verify": ["443"]}, "caddy reloader: option verify: invalid verify endpoint '443'"),
    ],
)
def test_a_bad_builtin_plugin_option_is_a_config_error_naming_plugin_and_option(kind, name, options, message) -> None:
    with pytest.raises(ConfigError) as raised:
        plugins.lookup(kind, name).from_options(options)
    assert raised.value.message.startswith(message)
