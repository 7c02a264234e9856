"""`renew(force=True)` end to end against real proxies: renew, reload through the
specs' reloader tables, verify over SNI, and not one failed handshake meanwhile.

The reloader tests drive ``issue_cert`` and ``reloader.reload()`` directly; these go
through ``certman.renewal.job.renew`` as the renewal timer does. Counts are printed (pytest -s).
"""

from __future__ import annotations

import re

import pytest
import services
from fixtures.proxies import (
    HandshakeLoop,
    haproxy_frontend,
    nginx_server_block,
    served_serial,
    served_serial_once_settled,
    tls_ready,
)

from certman.config import Settings
from certman.deploy.reloaders.haproxy import RuntimeAPI
from certman.deploy.served import Endpoint
from certman.keystore import FileKeystore
from certman.renewal.job import renew

MIN_HANDSHAKES = 300
MIN_EACH_SIDE = 50
NAMES = ("a.example", "b.example")


def settings_for(keystore: FileKeystore) -> Settings:
    return Settings(keystore=keystore.root, agree_tos=True)


def renew_all(keystore: FileKeystore):
    # One job: every spec's standalone solver listens on the same port.
    return renew(keystore, settings_for(keystore), force=True, jobs=1)


def nginx_reloads(nginx) -> int:
    # The master logs this at notice level for every `nginx -s reload` it receives.
    return len(re.findall(r"signal 1 \(SIGHUP\) received", nginx.service.log_path.read_text()))


def haproxy_worker_pid(haproxy) -> str:
    return RuntimeAPI(str(haproxy.socket)).command("show info").split("Pid: ")[1].splitlines()[0]


def served(endpoint: Endpoint) -> dict[str, str]:
    return {n: served_serial(endpoint, n) for n in NAMES}


def assert_renewed_and_deployed(
    report, served_before: dict[str, str], endpoint: Endpoint, keystore: FileKeystore
) -> None:
    assert [r.name for r in report.results] == list(NAMES)
    for result in report.results:
        assert result.ok and result.action == "renewed", result
        # Over SNI, each name is now served its own new certificate.
        served = served_serial_once_settled(endpoint, result.name, result.serial)
        assert served == result.serial != served_before[result.name]
        assert keystore.read_state(result.name).deploy.pending is False


def test_renew_renews_two_certificates_on_one_nginx_listener_with_one_reload(
    issue_cert, start_nginx, keystore: FileKeystore
) -> None:
    endpoint = Endpoint("127.0.0.1", services.free_port())
    first = {n: issue_cert(n) for n in NAMES}
    nginx = start_nginx(
        "".join(nginx_server_block(endpoint.port, n, first[n].live) for n in NAMES), tls_ready(endpoint, "b.example")
    )
    table = {"name": "nginx", **nginx.reloader_options, "verify": [str(endpoint)]}
    for n in NAMES:
        issue_cert(n, reloaders=(table,))
    served_before = served(endpoint)
    assert served_before == {n: first[n].serial for n in NAMES}
    reloads_before = nginx_reloads(nginx)

    report = renew_all(keystore)

    assert_renewed_and_deployed(report, served_before, endpoint, keystore)
    # Both certificates share the reloader table: deploy reloads nginx once for both.
    assert nginx_reloads(nginx) - reloads_before == 1


def test_renew_renews_two_certificates_on_one_haproxy_listener_without_a_restart(
    issue_cert, start_haproxy, keystore: FileKeystore
) -> None:
    endpoint = Endpoint("127.0.0.1", services.free_port())
    first = {n: issue_cert(n) for n in NAMES}
    haproxy = start_haproxy(
        haproxy_frontend(endpoint.port, *(first[n].live.combined for n in NAMES)), tls_ready(endpoint, "b.example")
    )
    table = {"name": "haproxy", "socket": str(haproxy.socket), "verify": [str(endpoint)]}
    for n in NAMES:
        issue_cert(n, reloaders=(table,))
    served_before = served(endpoint)
    assert served_before == {n: first[n].serial for n in NAMES}
    worker_before = haproxy_worker_pid(haproxy)

    report = renew_all(keystore)

    assert_renewed_and_deployed(report, served_before, endpoint, keystore)
    # The runtime API swapped both certificates in place: the same worker serves them.
    assert haproxy_worker_pid(haproxy) == worker_before


def run_loop_across_renew(endpoint: Endpoint, keystore: FileKeystore, old_serial: str) -> tuple[HandshakeLoop, str]:
    loop = HandshakeLoop(endpoint, "a.example")
    loop.start()
    try:
        loop.wait_until(lambda: loop.serials.get(old_serial, 0) >= MIN_EACH_SIDE)
        report = renew(keystore, settings_for(keystore), force=True)
        [result] = report.results
        assert result.ok and result.serial != old_serial, result
        assert keystore.read_state("a.example").deploy.pending is False
        loop.wait_until(lambda: loop.serials.get(result.serial, 0) >= MIN_EACH_SIDE and loop.total >= MIN_HANDSHAKES)
    finally:
        loop.stop()
    return loop, result.serial


@pytest.mark.slow
def test_nginx_serves_every_handshake_while_renew_force_renews_and_reloads(
    issue_cert, start_nginx, keystore: FileKeystore
) -> None:
    endpoint = Endpoint("127.0.0.1", services.free_port())
    first = issue_cert("a.example")
    nginx = start_nginx(nginx_server_block(endpoint.port, "a.example", first.live), tls_ready(endpoint, "a.example"))
    # Storing the spec with its reloader table issues again, but the proxy still serves
    # the first certificate: that is the one the loop starts on.
    issue_cert("a.example", reloaders=({"name": "nginx", **nginx.reloader_options, "verify": [str(endpoint)]},))
    old = first.serial

    loop, new = run_loop_across_renew(endpoint, keystore, old)

    print(f"\nnginx, renew --force: {loop.total} handshakes, {len(loop.failures)} failed, by serial {loop.serials}")
    assert loop.failures == []
    assert loop.serials[old] >= MIN_EACH_SIDE and loop.serials[new] >= MIN_EACH_SIDE


@pytest.mark.slow
def test_haproxy_serves_every_handshake_while_renew_force_renews_and_reloads(
    issue_cert, start_haproxy, keystore: FileKeystore
) -> None:
    endpoint = Endpoint("127.0.0.1", services.free_port())
    first = issue_cert("a.example")
    haproxy = start_haproxy(haproxy_frontend(endpoint.port, first.live.combined), tls_ready(endpoint, "a.example"))
    # Storing the spec with its reloader table issues again, but the proxy still serves
    # the first certificate: that is the one the loop starts on.
    issue_cert("a.example", reloaders=({"name": "haproxy", "socket": str(haproxy.socket), "verify": [str(endpoint)]},))
    old = first.serial

    loop, new = run_loop_across_renew(endpoint, keystore, old)

    print(f"\nhaproxy, renew --force: {loop.total} handshakes, {len(loop.failures)} failed, by serial {loop.serials}")
    assert loop.failures == []
    assert loop.serials[old] >= MIN_EACH_SIDE and loop.serials[new] >= MIN_EACH_SIDE
