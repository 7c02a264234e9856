"""The standalone HTTP-01 server: exact token paths only, slowloris-proof, bound narrowly, always closed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import services
from fixtures.fault_proxy import FaultProxy
from fixtures.issuing import issue_for, make_spec, wait_until

from certman.errors import ACMEError
from certman.keystore import FileKeystore
from certman.names import Identifier
from certman.solvers import Challenge
from certman.solvers.http01.standalone import StandaloneSettings, StandaloneSolver

TOKEN = "tok_" + "A" * 40
OTHER_TOKEN = "tok_" + "B" * 40
BATCH = (Challenge(Identifier("dns", "a.example"), "http-01", TOKEN, TOKEN + ".thumbprint"),)


def _port_is_free(port: int, address: str = "127.0.0.1") -> bool:
    """Nothing listens on ``port`` (connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
        return True


@pytest.fixture
def serving() -> Iterator[tuple[StandaloneSolver, str]]:
    port = services.free_port()
    solver = StandaloneSolver(StandaloneSettings("127.0.0.1", port, connection_timeout=0.3))
    solver.present(BATCH)
    try:
        yield solver, f"http://127.0.0.1:{port}"
    finally:
        solver.cleanup(BATCH)


def test_it_answers_get_on_a_token_of_the_batch(serving: tuple[StandaloneSolver, str]) -> None:
    _, base = serving

    response = requests.get(f"{base}/.well-known/acme-challenge/{TOKEN}", timeout=5)

    assert (response.status_code, response.text) == (200, TOKEN + ".thumbprint")


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", f"/.well-known/acme-challenge/{OTHER_TOKEN}"),
        ("GET", "/.well-known/acme-challenge/"),
        ("GET", "/.well-known/"),
        ("GET", "/"),
        ("GET", f"/.well-known/acme-challenge/{TOKEN}?x=1"),
        ("GET", f"/.well-known/acme-challenge/{TOKEN}/"),
        ("GET", f"/.well-known/acme-challenge/../acme-challenge/{TOKEN}"),
        ("HEAD", f"/.well-known/acme-challenge/{TOKEN}"),
        ("POST", f"/.well-known/acme-challenge/{TOKEN}"),
        ("PUT", f"/.well-known/acme-challenge/{TOKEN}"),
    ],
)
def test_everything_else_is_a_404_that_lists_nothing(
    serving: tuple[StandaloneSolver, str], method: str, path: str
) -> None:
    _, base = serving
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(f"{method} {path} HTTP/1.0\r\nHost: a.example\r\n\r\n".encode())
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk

    assert reply.startswith(b"HTTP/1.0 404")
    assert TOKEN.encode() not in reply


def test_a_client_that_sends_nothing_neither_blocks_validation_nor_holds_its_connection(
    serving: tuple[StandaloneSolver, str],
) -> None:
    _, base = serving
    port = int(base.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
    try:
        response = requests.get(f"{base}/.well-known/acme-challenge/{TOKEN}", timeout=5)
        assert response.status_code == 200
        # The server hangs up on each idle client after its connection timeout.
        assert all(sock.recv(1) == b"" for sock in idle)
    finally:
        for sock in idle:
            sock.close()


def test_it_binds_only_the_configured_address(serving: tuple[StandaloneSolver, str]) -> None:
    solver, _ = serving

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", solver.port), timeout=5).close()


def test_the_port_is_free_after_a_successful_issuance(pebble: services.Pebble, fresh_keystore: FileKeystore) -> None:
    issue_for(make_spec(pebble.directory_url, pebble, "a.example"), fresh_keystore)

    assert _port_is_free(pebble.http_port)


def test_the_port_is_free_after_a_failed_validation(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    fault_proxy.add(path=r"^/chalZ/", method="POST", status=400, problem="malformed")

    with pytest.raises(ACMEError, match="answering a challenge"):
        issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)

    assert _port_is_free(pebble.http_port)


def test_sigterm_while_validating_closes_the_port_and_exits_130(
    fault_proxy: FaultProxy, pebble: services.Pebble, tmp_path: Path
) -> None:
    # The CA stalls on the challenge answer, so certman sits in validation with the port open.
    stall = fault_proxy.add(path=r"^/chalZ/", method="POST", stall=25.0)
    keystore = tmp_path / "keystore"
    env = {**os.environ, "CERTMAN_KEYSTORE": str(keystore)}
    argv = [
        sys.executable,
        "-m",
        "certman",
        "issue",
        "--server",
        fault_proxy.directory_url,
        "--ca-bundle",
        str(pebble.ca_bundle),
        "--agree-tos",
        "--http-address",
        "127.0.0.1",
        "--http-port",
        str(pebble.http_port),
        "a.example",
    ]
    process = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: stall.fired > 0, "certman is waiting for the CA to take its challenge answer")
        assert not _port_is_free(pebble.http_port)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130
    assert stderr == "certman: interrupted\n"
    assert _port_is_free(pebble.http_port)
    assert not (keystore / "live").exists()


# How a SIGTERM can reach certman without interrupting the call its main thread is
# blocked in. Each prelude runs in the certman process before the CLI starts.
LOST_WAKEUP = """
import signal, threading, time
# The signal lands after the main thread last checked for signals and before it
# blocks (CPython only notices it when the blocking call returns): modelled by a
# thread that takes SIGTERM for the process while the main thread has it blocked.
threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
"""
SWALLOWED = """
import gc, os, signal, sys, threading
# The handler runs inside a garbage-collector callback (as it can inside __del__, an
# io object's finaliser or a weakref callback), where CPython discards its exception.
def swallow(phase, info):
    if (phase == "stop" and "certman.issuance.issue" in sys.modules and not swallow.done
            and threading.current_thread() is threading.main_thread()):
        swallow.done = True
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(10000))  # the handler runs here and its exception goes nowhere
swallow.done = False
gc.callbacks.append(swallow)
sys.unraisablehook = lambda unraisable: None
# `certman issue` runs without the cyclic collector; this model needs it to run.
import certman.cli
certman.cli.WITHOUT_CYCLE_COLLECTOR = frozenset()
"""


@pytest.mark.parametrize("prelude", [LOST_WAKEUP, SWALLOWED], ids=["lost-wakeup", "swallowed"])
def test_a_sigterm_the_main_thread_misses_still_stops_the_run(
    fault_proxy: FaultProxy, pebble: services.Pebble, tmp_path: Path, prelude: str
) -> None:
    stall = fault_proxy.add(path=r"^/chalZ/", method="POST", stall=25.0)
    keystore = tmp_path / "keystore"
    env = {**os.environ, "CERTMAN_KEYSTORE": str(keystore)}
    args = [
        "issue",
        "--server",
        fault_proxy.directory_url,
        "--ca-bundle",
        str(pebble.ca_bundle),
        "--agree-tos",
        "--http-address",
        "127.0.0.1",
        "--http-port",
        str(pebble.http_port),
        "a.example",
    ]
    code = prelude + f"\nimport sys\nsys.argv = ['certman', *{args!r}]\nfrom certman.cli import main\nmain()\n"
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    try:
        if prelude is LOST_WAKEUP:
            wait_until(lambda: stall.fired > 0, "certman is waiting for the CA to take its challenge answer")
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130
    assert stderr == "certman: interrupted\n"
    assert _port_is_free(pebble.http_port)
    assert not (keystore / "live").exists()
