"""Re-issue and reload while a client loop keeps handshaking: not one handshake may fail.

The loop starts on the old certificate, certman re-issues and reloads, and the loop
goes on until it has also seen the new certificate many times, with at least
MIN_HANDSHAKES in all. The counts are printed (pytest -s) for the report.
"""

from __future__ import annotations

import pytest
import services
from fixtures.proxies import HandshakeLoop, deployment_of, haproxy_frontend, nginx_server_block, tls_ready

from certman.deploy.served import Endpoint, verify_served
from certman.plugins import registry as plugins

MIN_HANDSHAKES = 300
MIN_EACH_SIDE = 50


def run_loop_across_reissue(endpoint, issue_cert, reload, old_serial):
    loop = HandshakeLoop(endpoint, "a.example")
    loop.start()
    try:
        loop.wait_until(lambda: loop.serials.get(old_serial, 0) >= MIN_EACH_SIDE)
        second = issue_cert("a.example")
        reload(deployment_of(second))
        verify_served(deployment_of(second), [endpoint])
        loop.wait_until(lambda: loop.serials.get(second.serial, 0) >= MIN_EACH_SIDE and loop.total >= MIN_HANDSHAKES)
    finally:
        loop.stop()
    return loop, second


@pytest.mark.slow
def test_nginx_reload_fails_no_handshake(issue_cert, start_nginx):
    first = issue_cert("a.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    nginx = start_nginx(nginx_server_block(endpoint.port, "a.example", first.live), tls_ready(endpoint, "a.example"))
    reloader = plugins.lookup("reloaders", "nginx").from_options(nginx.reloader_options)

    loop, second = run_loop_across_reissue(endpoint, issue_cert, lambda d: reloader.reload([d]), first.serial)

    print(f"\nnginx: {loop.total} handshakes, {len(loop.failures)} failed, by serial {loop.serials}")
    assert loop.failures == []
    assert loop.serials[first.serial] >= MIN_EACH_SIDE and loop.serials[second.serial] >= MIN_EACH_SIDE


@pytest.mark.slow
def test_haproxy_runtime_api_update_fails_no_handshake(issue_cert, start_haproxy):
    first = issue_cert("a.example")
    endpoint = Endpoint("127.0.0.1", services.free_port())
    haproxy = start_haproxy(haproxy_frontend(endpoint.port, first.live.combined), tls_ready(endpoint, "a.example"))
    reloader = plugins.lookup("reloaders", "haproxy").from_options({"socket": str(haproxy.socket)})

    loop, second = run_loop_across_reissue(endpoint, issue_cert, lambda d: reloader.reload([d]), first.serial)

    print(f"\nhaproxy: {loop.total} handshakes, {len(loop.failures)} failed, by serial {loop.serials}")
    assert loop.failures == []
    assert loop.serials[first.serial] >= MIN_EACH_SIDE and loop.serials[second.serial] >= MIN_EACH_SIDE
