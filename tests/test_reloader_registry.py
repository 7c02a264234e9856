"""Every built-in proxy reloader is found by name, accepts `verify`, and rejects unknown options."""

from __future__ import annotations

import pytest

from certman.deploy.reloaders import Reloader
from certman.deploy.served import Endpoint, endpoints_from_options
from certman.errors import ConfigError
from certman.plugins import registry as plugins

MINIMAL_OPTIONS = {
    "nginx": {},
    "haproxy": {"socket": "/run/haproxy/admin.sock"},
    "caddy": {"admin": "localhost:2019"},
    "traefik": {"path": "/etc/traefik/dynamic/certman.toml"},
}


@pytest.mark.parametrize("name", sorted(MINIMAL_OPTIONS))
def test_a_builtin_reloader_is_built_from_its_table_including_verify_endpoints(name):
    table = {"name": name, **MINIMAL_OPTIONS[name], "verify": ["127.0.0.1:443"]}

    reloader = plugins.lookup("reloaders", name).from_options(table)

    assert isinstance(reloader, Reloader)
    assert endpoints_from_options(table) == (Endpoint("127.0.0.1", 443),)


@pytest.mark.parametrize("name", sorted(MINIMAL_OPTIONS))
def test_a_misspelt_option_is_a_config_error_naming_it(name):
    with pytest.raises(ConfigError) as failure:
        plugins.lookup("reloaders", name).from_options({**MINIMAL_OPTIONS[name], "verfy": ["127.0.0.1:443"]})

    assert "verfy" in failure.value.message


def test_a_verify_option_that_is_not_a_list_is_a_config_error():
    with pytest.raises(ConfigError):
        endpoints_from_options({"verify": 443})
