"""Issue 12 kind 1: "every address" is IPv4 and IPv6; an explicit address is exactly that.

The end-to-end cases run against a Pebble whose DNS (challtestsrv) answers every name
with AAAA ::1 and no A record, so the CA can only validate over IPv6; ``renew`` runs as
the timer runs it (``env -i PATH=/usr/bin:/bin`` from ``/``).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import services

from certman.doctor.ports import check_port
from certman.names import Identifier
from certman.solvers import Challenge
from certman.solvers.http01.standalone import StandaloneSettings, StandaloneSolver
from certman.solvers.tlsalpn01 import TLSALPN01Settings, TLSALPN01Solver

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = ("/usr/bin/env", "-i", "PATH=/usr/bin:/bin")
TOKEN = "tok_" + "C" * 40
BATCH = (Challenge(Identifier("dns", "a.example"), "http-01", TOKEN, TOKEN + ".thumbprint"),)


@pytest.fixture(scope="session")
def ipv6_pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Pebble]:
    """A Pebble that resolves every name to ::1 only (challtestsrv -defaultIPv4 "" -defaultIPv6 ::1)."""
    with services.start_pebble(tmp_path_factory.mktemp("pebble-v6"), dns_addresses=("", "::1")) as server:
        yield server


def _fetch(host: str, port: int) -> bytes:
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(f"GET /.well-known/acme-challenge/{TOKEN} HTTP/1.0\r\nHost: a.example\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    return reply


def _served_on(solver: StandaloneSolver, host: str) -> bool:
    try:
        return _fetch(host, solver.port).endswith(b"\r\n\r\n" + TOKEN.encode() + b".thumbprint")
    except ConnectionRefusedError:
        return False


@pytest.mark.parametrize(
    "address, on_ipv4, on_ipv6",
    [("", True, True), ("127.0.0.1", True, False), ("::1", False, True), ("::", False, True)],
)
def test_an_empty_address_serves_both_families_and_an_explicit_one_only_itself(
    address: str, on_ipv4: bool, on_ipv6: bool
) -> None:
    solver = StandaloneSolver(StandaloneSettings(address, 0))
    solver.present(BATCH)
    try:
        assert (_served_on(solver, "127.0.0.1"), _served_on(solver, "::1")) == (on_ipv4, on_ipv6)
    finally:
        solver.cleanup(BATCH)


def _without_ipv6(family: int, kind: int) -> socket.socket:
    if family == socket.AF_INET6:
        raise OSError(errno.EAFNOSUPPORT, os.strerror(errno.EAFNOSUPPORT))
    return socket.socket(family, kind)


def test_a_kernel_without_ipv6_gets_an_ipv4_server() -> None:
    solver = StandaloneSolver(StandaloneSettings("", 0), socket_factory=_without_ipv6)
    solver.present(BATCH)
    try:
        assert _served_on(solver, "127.0.0.1")
    finally:
        solver.cleanup(BATCH)


NETNS_PROBE = """
import socket, sys
from certman.names import Identifier
from certman.solvers import Challenge
from certman.solvers.http01.standalone import StandaloneSettings, StandaloneSolver
token = "tok_" + "D" * 40
batch = (Challenge(Identifier("dns", "a.example"), "http-01", token, token + ".x"),)
solver = StandaloneSolver(StandaloneSettings("", 0))
solver.present(batch)
with socket.create_connection(("127.0.0.1", solver.port), timeout=5) as sock:
    sock.sendall(f"GET /.well-known/acme-challenge/{token} HTTP/1.0\\r\\n\\r\\n".encode())
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
solver.cleanup(batch)
print(reply.split(b"\\r\\n")[0].decode(), reply.endswith(token.encode() + b".x"))
"""


def test_a_host_with_ipv6_disabled_still_serves_ipv4(tmp_path: Path) -> None:
    script = tmp_path / "probe.py"
    script.write_text(NETNS_PROBE)
    setup = (
        "ip link set lo up && sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
        "net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1 && "
        f'test "$(cat /proc/sys/net/ipv6/conf/lo/disable_ipv6)" = 1 && exec {sys.executable} {script}'
    )
    done = subprocess.run(["unshare", "-n", "sh", "-c", setup], capture_output=True, text=True, timeout=60)

    assert (done.returncode, done.stdout.strip()) == (0, "HTTP/1.0 200 OK True"), done.stderr


def test_doctor_sees_a_port_held_on_ipv6_only() -> None:
    with socket.socket(socket.AF_INET6) as held:
        held.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        held.bind(("::1", 0))
        held.listen()
        port = held.getsockname()[1]

        check = check_port("standalone", "", port)

    assert not check.ok
    assert f"cannot bind *:{port}" in check.detail


def test_a_tls_alpn_server_on_every_address_answers_ipv6() -> None:
    solver = TLSALPN01Solver(TLSALPN01Settings("", 0))
    batch = (Challenge(Identifier("dns", "a.example"), "tls-alpn-01", TOKEN, TOKEN + ".thumbprint"),)
    solver.present(batch)
    try:
        socket.create_connection(("::1", solver.port), timeout=5).close()
        socket.create_connection(("127.0.0.1", solver.port), timeout=5).close()
    finally:
        solver.cleanup(batch)


def _by_hand(keystore: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    argv = [CERTMAN, "--keystore", str(keystore), *args]
    return subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=120)


def test_ipv6_only_names_are_issued_and_renewed_from_the_timer(ipv6_pebble: services.Pebble, tmp_path: Path) -> None:
    keystore = tmp_path / "keystore"
    ca = ["--server", ipv6_pebble.directory_url, "--ca-bundle", str(ipv6_pebble.ca_bundle), "--agree-tos"]
    http = _by_hand(keystore, "issue", "v6.example.com", *ca, "--http-port", str(ipv6_pebble.http_port))
    assert http.returncode == 0, http.stderr
    tls = _by_hand(
        keystore, "issue", "v6tls.example.com", *ca, "--solver", "tls-alpn-01", "--tls-port", str(ipv6_pebble.tls_port)
    )
    assert tls.returncode == 0, tls.stderr

    renewed = subprocess.run(
        [*TIMER_ENV, CERTMAN, "--keystore", str(keystore), "renew", "--force", "--jobs", "2", "--json"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert renewed.returncode == 0, renewed.stderr
    outcomes = {r["name"]: r["action"] for r in json.loads(renewed.stdout)["certificates"]}
    assert outcomes == {"v6.example.com": "renewed", "v6tls.example.com": "renewed"}
