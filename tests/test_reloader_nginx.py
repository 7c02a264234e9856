"""The nginx reloader against a real nginx serving certificates from live/."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests
import services
from fixtures.proxies import deployment_of, nginx_server_block, served_serial, tls_ready

from certman.deploy.served import Endpoint, verify_all, verify_served
from certman.errors import ReloadError
from certman.keystore import LivePaths
from certman.plugins import registry as plugins


def nginx_reloader(nginx):
    return plugins.lookup("reloaders", "nginx").from_options(nginx.reloader_options)


def test_reload_makes_nginx_serve_the_reissued_certificate(issue_cert, start_nginx):
    first = issue_cert("a.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    nginx = start_nginx(nginx_server_block(endpoint.port, "a.example", first.live), tls_ready(endpoint, "a.example"))
    assert served_serial(endpoint, "a.example") == first.serial

    second = issue_cert("a.example")
    nginx_reloader(nginx).reload([deployment_of(second)])

    checks = verify_served(deployment_of(second), [endpoint])
    assert [c.served_serial for c in checks] == [second.serial]
    assert second.serial != first.serial


def test_a_configuration_nginx_rejects_is_not_reloaded_and_nginx_explains_why(issue_cert, start_nginx, tmp_path: Path):
    first = issue_cert("a.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    nginx = start_nginx(nginx_server_block(endpoint.port, "a.example", first.live), tls_ready(endpoint, "a.example"))
    missing = LivePaths(tmp_path / "nowhere")
    nginx.write_config(nginx_server_block(endpoint.port, "a.example", missing))

    with pytest.raises(ReloadError) as failure:
        nginx_reloader(nginx).reload([deployment_of(first)])

    assert "nginx -t failed" in failure.value.message
    assert "cannot load certificate" in failure.value.hint
    assert str(missing.fullchain) in failure.value.hint
    assert served_serial(endpoint, "a.example") == first.serial


def test_two_certificates_on_one_nginx_listener_are_each_selected_by_sni_and_renewed(issue_cert, start_nginx):
    a1, b1 = issue_cert("a.example"), issue_cert("b.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    nginx = start_nginx(
        nginx_server_block(endpoint.port, "a.example", a1.live)
        + nginx_server_block(endpoint.port, "b.example", b1.live),
        tls_ready(endpoint, "b.example"),
    )
    assert (served_serial(endpoint, "a.example"), served_serial(endpoint, "b.example")) == (a1.serial, b1.serial)

    a2, b2 = issue_cert("a.example"), issue_cert("b.example")
    nginx_reloader(nginx).reload([deployment_of(a2), deployment_of(b2)])

    checks = verify_all([deployment_of(a2), deployment_of(b2)], [endpoint])
    assert [(c.name, c.served_serial) for c in checks] == [("a.example", a2.serial), ("b.example", b2.serial)]


def test_http01_passes_through_an_nginx_that_holds_the_http_port(pebble, issue_cert, start_nginx):
    solver_port = services.free_port()
    access_log = Path("access.log")
    nginx = start_nginx(
        f"  server {{\n    listen 127.0.0.1:{pebble.http_port};\n"
        f"    access_log access.log;\n"
        f"    location /.well-known/acme-challenge/ {{ proxy_pass http://127.0.0.1:{solver_port}; }}\n"
        "    location / { return 301 https://$host$request_uri; }\n  }\n",
        lambda: (
            requests.get(
                f"http://127.0.0.1:{pebble.http_port}/", allow_redirects=False, timeout=services.PROBE_TIMEOUT
            ).status_code
            == 301
        ),
    )

    result = issue_cert("a.example", solver_port=solver_port)

    assert result.identifiers == ("a.example",)
    forwarded = [
        line
        for line in (nginx.prefix / access_log).read_text().splitlines()
        if "GET /.well-known/acme-challenge/" in line
    ]
    assert forwarded and all('" 200 ' in line for line in forwarded)


def test_a_failing_reload_command_is_a_reload_error_with_its_own_words(issue_cert, start_nginx):
    first = issue_cert("a.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    nginx = start_nginx(nginx_server_block(endpoint.port, "a.example", first.live), tls_ready(endpoint, "a.example"))
    refuse = [sys.executable, "-c", "import sys; sys.exit('Failed to reload nginx.service: Unit not found.')"]
    reloader = plugins.lookup("reloaders", "nginx").from_options({**nginx.reloader_options, "command": refuse})

    with pytest.raises(ReloadError) as failure:
        reloader.reload([deployment_of(first)])

    assert "exited with 1" in failure.value.message
    assert failure.value.hint == "Failed to reload nginx.service: Unit not found."
