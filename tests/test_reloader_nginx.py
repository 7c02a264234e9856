"""The nginx reloader against a real nginx serving certificates from live/."""

from __future__ import annotations

from pathlib import Path

import pytest

import services
from certman import plugins
from certman.errors import ReloadError
from certman.keystore import LivePaths
from certman.reloaders.verify import Endpoint, verify_served
from fixtures.proxies import deployment_of, nginx_server_block, served_serial, tls_ready


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


def test_a_configuration_nginx_rejects_is_not_reloaded_and_nginx_explains_why(issue_cert, start_nginx,
                                                                               tmp_path: Path):
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
