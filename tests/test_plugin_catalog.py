"""Every built-in plugin declares its settings, and `certman plugins NAME` lists them with their help."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

from certman.cli import cli
from certman.errors import ConfigError
from certman.plugins import registry as plugins
from certman.plugins.catalog import catalog
from certman.plugins.settings import Seconds, setting
from certman.reloaders import Deployment, VerifySettings, reloader_settings

SETTINGS = {
    "standalone": ["address", "port", "connection_timeout"],
    "webroot": ["path"],
    "tls-alpn-01": ["address", "port"],
    "nginx": ["binary", "config", "prefix", "command", "timeout", "verify"],
    "haproxy": ["socket", "command", "timeout", "config", "binary", "verify"],
    "caddy": ["admin", "timeout", "verify"],
    "traefik": ["path", "verify"],
    "command": ["argv", "timeout", "verify"],
}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_plugins_name_lists_every_setting_with_its_help(name: str) -> None:
    as_json = CliRunner().invoke(cli, ["plugins", name, "--json"])
    text = CliRunner().invoke(cli, ["plugins", name])

    assert as_json.exit_code == 0 and text.exit_code == 0, as_json.output + text.output
    (info,) = json.loads(as_json.stdout)["plugins"]
    assert [s["name"] for s in info["settings"]] == SETTINGS[name]
    rows = {line.split()[0]: line for line in text.stdout.splitlines() if line.split()}
    for shown in info["settings"]:
        assert shown["help"], shown
        assert shown["help"] in rows[shown["name"]]


@pytest.mark.parametrize(
    ("kind", "name"), [(kind, name) for kind, builtins in sorted(plugins.BUILTIN.items()) for name in sorted(builtins)]
)
def test_every_builtin_plugin_declares_settings_read_by_from_options(kind: str, name: str) -> None:
    plugin = plugins.lookup(kind, name)

    classes = plugin.settings_classes
    assert classes, f"{kind} {name} declares no settings_classes"
    for cls in classes:
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]
        for field in dataclasses.fields(cls):
            assert field.metadata.get("help"), f"{kind} {name}: setting {field.name} has no help"
    assert callable(plugin.from_options)
    if kind == "reloaders":
        assert "verify" in {f.name for cls in classes for f in dataclasses.fields(cls)}


def test_the_catalog_shows_settings_for_every_builtin_plugin() -> None:
    builtin = {(kind, name) for kind, names in plugins.BUILTIN.items() for name in names}

    listed = {(i.kind, i.name): i for i in catalog() if (i.kind, i.name) in builtin}

    assert set(listed) == builtin
    assert all(i.settings and i.summary for i in listed.values()), [k for k, i in listed.items() if not i.settings]


@dataclasses.dataclass(frozen=True)
class MyProxySettings:
    url: str = setting(help="The proxy's admin URL.")
    timeout: Seconds = setting(help="Seconds the reload may take.", default=10.0)


def test_a_third_party_reloader_gets_the_builtin_settings_shape_from_certman_reloaders() -> None:
    table = {"name": "myproxy", "url": "http://127.0.0.1:9", "verify": ["127.0.0.1:443"]}

    settings = reloader_settings(MyProxySettings, table, plugin="myproxy reloader")

    assert settings == MyProxySettings(url="http://127.0.0.1:9")
    assert [f.name for f in dataclasses.fields(VerifySettings)] == ["verify"]
    assert Deployment.__name__ == "Deployment"
    with pytest.raises(ConfigError, match="myproxy reloader: unknown option"):
        reloader_settings(MyProxySettings, {**table, "urll": "x"}, plugin="myproxy reloader")
