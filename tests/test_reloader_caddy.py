"""The Caddy reloader against a real Caddy that loads certificate files from live/."""

from __future__ import annotations

import pytest
import requests
import services
from fixtures.proxies import deployment_of, served_serial, tls_ready

from certman.deploy.served import Endpoint, verify_all
from certman.errors import ConfigError, ReloadError
from certman.keystore import LivePaths
from certman.plugins import registry as plugins


def site(endpoint: Endpoint, server_name: str, live: LivePaths) -> str:
    return (
        f"https://{server_name}:{endpoint.port} {{\n  bind {endpoint.host}\n"
        f'  tls {live.fullchain} {live.privkey}\n  respond "ok"\n}}\n'
    )


def caddy_reloader(**options):
    return plugins.lookup("reloaders", "caddy").from_options(options)


def test_admin_api_reload_makes_caddy_serve_the_reissued_certificates(issue_cert, start_caddy):
    a1, b1 = issue_cert("a.example"), issue_cert("b.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    caddy = start_caddy(
        site(endpoint, "a.example", a1.live) + site(endpoint, "b.example", b1.live), tls_ready(endpoint, "b.example")
    )
    assert (served_serial(endpoint, "a.example"), served_serial(endpoint, "b.example")) == (a1.serial, b1.serial)

    a2, b2 = issue_cert("a.example"), issue_cert("b.example")
    caddy_reloader(admin=caddy.admin).reload([deployment_of(a2), deployment_of(b2)])

    checks = verify_all([deployment_of(a2), deployment_of(b2)], [endpoint])
    assert [(c.name, c.served_serial) for c in checks] == [("a.example", a2.serial), ("b.example", b2.serial)]


def test_an_unreachable_admin_api_is_a_reload_error(issue_cert):
    first = issue_cert("a.example")
    admin = f"127.0.0.1:{services.free_port()}"

    with pytest.raises(ReloadError) as failure:
        caddy_reloader(admin=admin).reload([deployment_of(first)])

    assert f"cannot reach Caddy's admin API at {admin}" in failure.value.message


def test_an_admin_address_with_a_path_is_a_config_error():
    with pytest.raises(ConfigError):
        caddy_reloader(admin="localhost:2019/config")


def test_http01_passes_through_a_caddy_that_holds_the_http_port(pebble, issue_cert, start_caddy):
    solver_port = services.free_port()
    start_caddy(
        f"http://a.example:{pebble.http_port} {{\n  bind 127.0.0.1\n"
        f"  handle /.well-known/acme-challenge/* {{\n    reverse_proxy 127.0.0.1:{solver_port}\n  }}\n"
        "  handle {\n    redir https://{host}{uri} permanent\n  }\n}\n",
        lambda: (
            requests.get(
                f"http://127.0.0.1:{pebble.http_port}/",
                headers={"Host": "a.example"},
                allow_redirects=False,
                timeout=services.PROBE_TIMEOUT,
            ).status_code
            == 301
        ),
    )

    result = issue_cert("a.example", solver_port=solver_port)

    assert result.identifiers == ("a.example",)
