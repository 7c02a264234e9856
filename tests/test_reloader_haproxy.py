"""The HAProxy reloader against a real HAProxy: runtime API first, a reload command as fallback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests
import services
from fixtures.proxies import deployment_of, haproxy_frontend, served_serial, tls_ready

from certman.deploy.reloaders.haproxy import RuntimeAPI
from certman.deploy.served import Endpoint, verify_all
from certman.errors import ReloadError
from certman.plugins import registry as plugins


def haproxy_reloader(**options):
    return plugins.lookup("reloaders", "haproxy").from_options(options)


def test_runtime_api_makes_haproxy_serve_the_reissued_certificate(issue_cert, start_haproxy):
    first = issue_cert("a.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    haproxy = start_haproxy(haproxy_frontend(endpoint.port, first.live.combined), tls_ready(endpoint, "a.example"))
    worker_before = worker_pid(haproxy.socket)

    second = issue_cert("a.example")
    haproxy_reloader(socket=str(haproxy.socket)).reload([deployment_of(second)])

    assert served_serial(endpoint, "a.example") == second.serial != first.serial
    # No restart: the same processes serve the new certificate.
    assert worker_pid(haproxy.socket) == worker_before


def worker_pid(admin_socket: Path) -> str:
    return RuntimeAPI(str(admin_socket)).command("show info").split("Pid: ")[1].splitlines()[0]


def test_a_certificate_haproxy_has_not_loaded_falls_back_to_the_reload_command(
    issue_cert, start_haproxy, tmp_path: Path
):
    first = issue_cert("a.example")
    other = issue_cert("b.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    haproxy = start_haproxy(haproxy_frontend(endpoint.port, first.live.combined), tls_ready(endpoint, "a.example"))
    marker = tmp_path / "reloaded"
    command = [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('yes')"]

    haproxy_reloader(socket=str(haproxy.socket), command=command).reload([deployment_of(other)])

    assert marker.read_text() == "yes"


def test_a_missing_socket_without_a_fallback_command_is_a_reload_error(issue_cert, tmp_path: Path):
    first = issue_cert("a.example")

    with pytest.raises(ReloadError) as failure:
        haproxy_reloader(socket=str(tmp_path / "no.sock")).reload([deployment_of(first)])

    assert "runtime API socket is unavailable" in failure.value.message
    assert "command" in failure.value.hint


def test_two_certificates_on_one_haproxy_listener_are_each_selected_by_sni_and_renewed(issue_cert, start_haproxy):
    a1, b1 = issue_cert("a.example"), issue_cert("b.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    haproxy = start_haproxy(
        haproxy_frontend(endpoint.port, a1.live.combined, b1.live.combined), tls_ready(endpoint, "b.example")
    )
    assert (served_serial(endpoint, "a.example"), served_serial(endpoint, "b.example")) == (a1.serial, b1.serial)

    a2, b2 = issue_cert("a.example"), issue_cert("b.example")
    haproxy_reloader(socket=str(haproxy.socket)).reload([deployment_of(a2), deployment_of(b2)])

    checks = verify_all([deployment_of(a2), deployment_of(b2)], [endpoint])
    assert [(c.name, c.served_serial) for c in checks] == [("a.example", a2.serial), ("b.example", b2.serial)]


def test_http01_passes_through_a_haproxy_that_holds_the_http_port(pebble, issue_cert, start_haproxy):
    solver_port = services.free_port()
    start_haproxy(
        "frontend http\n"
        f"  bind 127.0.0.1:{pebble.http_port}\n"
        "  acl acme_challenge path_beg /.well-known/acme-challenge/\n"
        "  http-request redirect scheme https code 301 unless acme_challenge\n"
        "  use_backend certman_http01 if acme_challenge\n"
        "backend certman_http01\n"
        f"  server solver 127.0.0.1:{solver_port}\n",
        lambda: (
            requests.get(
                f"http://127.0.0.1:{pebble.http_port}/", allow_redirects=False, timeout=services.PROBE_TIMEOUT
            ).status_code
            == 301
        ),
    )

    result = issue_cert("a.example", solver_port=solver_port)

    assert result.identifiers == ("a.example",)


def test_the_runtime_api_also_works_over_a_tcp_stats_socket(issue_cert, start_haproxy):
    first = issue_cert("a.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    api_port = services.free_port()
    start_haproxy(
        f"global\n  stats socket ipv4@127.0.0.1:{api_port} level admin\n"
        + haproxy_frontend(endpoint.port, first.live.combined),
        tls_ready(endpoint, "a.example"),
    )

    second = issue_cert("a.example")
    haproxy_reloader(socket=f"127.0.0.1:{api_port}").reload([deployment_of(second)])

    assert served_serial(endpoint, "a.example") == second.serial


def test_a_dry_run_checks_the_configuration_and_the_socket_without_changing_what_haproxy_serves(
    issue_cert, start_haproxy, tmp_path: Path
):
    first = issue_cert("a.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    haproxy = start_haproxy(haproxy_frontend(endpoint.port, first.live.combined), tls_ready(endpoint, "a.example"))
    worker_before = worker_pid(haproxy.socket)
    reloader = haproxy_reloader(socket=str(haproxy.socket), config=str(haproxy.config))

    reloader.test_config()
    assert worker_pid(haproxy.socket) == worker_before

    broken = tmp_path / "broken.cfg"
    broken.write_text(haproxy.config.read_text() + "this is not haproxy\n")
    with pytest.raises(ReloadError) as rejected:
        haproxy_reloader(socket=str(haproxy.socket), config=str(broken)).test_config()
    assert "haproxy -c failed" in rejected.value.message
    with pytest.raises(ReloadError) as no_socket:
        haproxy_reloader(socket=str(tmp_path / "no.sock")).test_config()
    assert "runtime API socket is unavailable" in no_socket.value.message
    assert served_serial(endpoint, "a.example") == first.serial
