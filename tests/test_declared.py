"""`[[certificate]]` tables in certman.toml become CertSpecs, or a clear ConfigError."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from certman.config import Settings
from certman.errors import ConfigError
from certman.renewal.declared import declared_specs

BASE = {"server": "https://ca.example/dir", "keystore": Path("/ks"), "solver": "webroot", "webroot": "/srv/www"}


def specs(*tables: dict[str, object]):
    return declared_specs(Settings(**BASE, certificates=tables))


def test_a_declaration_takes_the_run_wide_defaults():
    [spec] = specs({"names": ["Example.ORG", "www.example.org"]}).values()
    assert spec.name == "example.org"
    assert [i.value for i in spec.identifiers] == ["example.org", "www.example.org"]
    assert spec.server == "https://ca.example/dir"
    assert spec.solvers[0].name == "webroot" and spec.solvers[0].options == {"path": "/srv/www"}


def test_a_declaration_can_name_its_solver_reloader_and_renew_before():
    [spec] = specs(
        {
            "name": "api",
            "names": ["api.example.org"],
            "renew_before_days": 20,
            "key_type": "rsa2048",
            "solver": [{"name": "standalone", "port": 8402}],
            "reloader": [{"name": "command", "argv": ["true"]}],
        }
    ).values()
    assert (spec.name, spec.key_type, spec.renew_before_days) == ("api", "rsa2048", 20.0)
    assert spec.solvers[0].options == {"port": 8402}
    # A bare argv[0] is recorded as the program PATH finds (issue 11: the timer's PATH may lack it).
    assert spec.reloaders == ({"name": "command", "argv": [shutil.which("true")]},)


def test_a_declaration_without_names_is_a_config_error():
    with pytest.raises(ConfigError, match=r"\[\[certificate\]\] #1: names must be a non-empty list"):
        specs({"name": "x"})


def test_an_unknown_key_is_a_config_error_listing_the_known_ones():
    with pytest.raises(ConfigError, match="unknown key\\(s\\) domains") as caught:
        specs({"domains": ["example.org"]})
    assert "names" in caught.value.hint


def test_an_invalid_name_is_a_config_error():
    with pytest.raises(ConfigError, match="#2"):
        specs({"names": ["ok.example"]}, {"names": ["bad..example"]})


def test_the_same_certificate_declared_twice_is_a_config_error():
    with pytest.raises(ConfigError, match="declared twice"):
        specs({"names": ["a.example"]}, {"names": ["a.example", "b.example"]})


def test_a_declaration_without_solver_takes_the_run_wide_solver_tables():
    settings = Settings(
        **{**BASE, "solver": "standalone"},
        solvers=({"name": "webroot", "path": "/srv/a"},),
        certificates=({"names": ["a.example"]},),
    )
    [spec] = declared_specs(settings).values()
    assert spec.solvers[0].name == "webroot" and spec.solvers[0].options == {"path": "/srv/a"}
