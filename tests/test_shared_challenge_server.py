"""One challenge server per address and port, shared by every order in flight: in one
`renew --jobs N` run, and with a manual `certman issue` started while another certman
process holds the port. Driven the way the timer runs certman: from `/`, under
`env -i PATH=/usr/bin:/bin`, the trust and the keystore only in certman.toml."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import services
import tomli_w

from certman.keystore import FileKeystore
from certman.names import Identifier
from certman.solvers import Challenge
from certman.solvers.http01.standalone import StandaloneSettings, StandaloneSolver
from certman.solvers.shared import Rendezvous
from certman.solvers.tlsalpn01 import TLSALPN01Settings, TLSALPN01Solver

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = {"PATH": "/usr/bin:/bin"}


def _config(tmp_path: Path, pebble: services.Pebble, solver: dict[str, object], count: int, **extra: object) -> Path:
    path = tmp_path / "certman.toml"
    document = {
        "server": pebble.directory_url,
        "ca_bundle": str(pebble.ca_bundle),
        "agree_tos": True,
        "email": "ops@example.com",
        "keystore": str(tmp_path / "keystore"),
        "timeout": 60.0,
        **extra,
        "certificate": [{"names": [f"c{i}.shared.example"], "solver": [solver]} for i in range(count)],
    }
    path.write_text(tomli_w.dumps(document))
    return path


def _run(config: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CERTMAN, "--config", str(config), *args],
        env=TIMER_ENV,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _actions(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    return {c["name"]: c["action"] for c in json.loads(done.stdout)["certificates"]}


def test_renew_jobs_10_issues_10_certificates_through_one_standalone_server(
    pebble: services.Pebble, tmp_path: Path
) -> None:
    solver = {"name": "standalone", "address": "127.0.0.1", "port": pebble.http_port}
    config = _config(tmp_path, pebble, solver, 10)

    done = _run(config, "renew", "--jobs", "10", "--json")

    assert done.returncode == 0, done.stderr
    assert _actions(done) == {f"c{i}.shared.example": "issued" for i in range(10)}
    assert "Traceback" not in done.stderr
    assert _port_is_free(pebble.http_port)


def test_renew_jobs_4_issues_each_tls_alpn_01_certificate_through_one_server(
    pebble: services.Pebble, tmp_path: Path
) -> None:
    solver = {"name": "tls-alpn-01", "address": "127.0.0.1", "port": pebble.tls_port}
    config = _config(tmp_path, pebble, solver, 4)

    done = _run(config, "renew", "--jobs", "4", "--json")

    assert done.returncode == 0, done.stderr
    assert _actions(done) == {f"c{i}.shared.example": "issued" for i in range(4)}
    assert _port_is_free(pebble.tls_port)


@pytest.fixture
def held_by_another_certman(pebble: services.Pebble, tmp_path: Path) -> Iterator[StandaloneSolver]:
    """The standalone port held through the library, as a renew in flight on the same keystore holds it."""
    keystore = FileKeystore(tmp_path / "keystore")
    settings = StandaloneSettings("127.0.0.1", pebble.http_port)
    solver = StandaloneSolver(settings, rendezvous=Rendezvous.under(keystore.root, timeout=30.0))
    token = "held_" + "H" * 40
    batch = (Challenge(Identifier("dns", "held.example"), "http-01", token, token + ".thumbprint"),)
    solver.present(batch)
    try:
        yield solver
    finally:
        solver.cleanup(batch)


def test_a_manual_issue_joins_the_server_another_certman_holds(
    pebble: services.Pebble, tmp_path: Path, held_by_another_certman: StandaloneSolver
) -> None:
    config = _config(tmp_path, pebble, {"name": "standalone"}, 0)

    done = _run(
        config,
        "issue",
        "--http-address",
        "127.0.0.1",
        "--http-port",
        str(pebble.http_port),
        "manual.shared.example",
    )

    assert done.returncode == 0, done.stderr
    assert "already in use" not in done.stderr
    assert not _port_is_free(pebble.http_port)  # the holder still serves its own order
    spool = tmp_path / "keystore" / "challenges" / f"http01-127.0.0.1-{pebble.http_port}"
    assert stat.S_IMODE(spool.lstat().st_mode) == 0o700
    assert list(spool.iterdir()) == []  # the joiner took its token back


def test_a_manual_tls_alpn_01_issue_joins_the_server_another_certman_holds(
    pebble: services.Pebble, tmp_path: Path
) -> None:
    keystore = FileKeystore(tmp_path / "keystore")
    holder = TLSALPN01Solver(
        TLSALPN01Settings("127.0.0.1", pebble.tls_port), rendezvous=Rendezvous.under(keystore.root, timeout=30.0)
    )
    held = (Challenge(Identifier("dns", "held.example"), "tls-alpn-01", "t", "t.thumbprint"),)
    config = _config(tmp_path, pebble, {"name": "standalone"}, 0)
    holder.present(held)
    try:
        done = _run(
            config,
            "issue",
            "--solver",
            "tls-alpn-01",
            "--tls-address",
            "127.0.0.1",
            "--tls-port",
            str(pebble.tls_port),
            "manual-alpn.shared.example",
        )
        assert not _port_is_free(pebble.tls_port)  # the holder still serves its own order
    finally:
        holder.cleanup(held)

    assert done.returncode == 0, done.stderr
    assert "already in use" not in done.stderr
    assert _port_is_free(pebble.tls_port)


def test_a_listener_that_is_not_certman_is_still_port_in_use_with_the_hint(
    pebble: services.Pebble, tmp_path: Path
) -> None:
    config = _config(tmp_path, pebble, {"name": "standalone"}, 0)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", pebble.http_port))
        squatter.listen()
        done = _run(
            config,
            "issue",
            "--http-address",
            "127.0.0.1",
            "--http-port",
            str(pebble.http_port),
            "squatted.shared.example",
        )

    assert done.returncode == 5, done.stderr
    assert "already in use" in done.stderr
    assert "hint:" in done.stderr and "--http-port" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "keystore" / "live" / "squatted.shared.example").exists()


def _challenge(token: str) -> Challenge:
    return Challenge(Identifier("dns", f"{token[:4]}.example"), "http-01", token, token + ".thumbprint")


def test_orders_on_one_port_share_one_server_and_each_cleanup_takes_back_only_its_own_token() -> None:
    port = services.free_port()
    first, second = (StandaloneSolver(StandaloneSettings("127.0.0.1", port)) for _ in range(2))
    one, two = (_challenge("one_" + "A" * 40),), (_challenge("two_" + "B" * 40),)

    def fetch(batch: tuple[Challenge, ...]) -> int:
        url = f"http://127.0.0.1:{port}/.well-known/acme-challenge/{batch[0].token}"
        return requests.get(url, timeout=5).status_code

    first.present(one)
    try:
        second.present(two)
        try:
            assert (fetch(one), fetch(two)) == (200, 200)
        finally:
            first.cleanup(one)
        assert (fetch(one), fetch(two)) == (404, 200)
    finally:
        second.cleanup(two)
    assert _port_is_free(port)


JOINER = """
import socket, sys
from pathlib import Path
from certman.solvers.http01.standalone import StandaloneSettings, StandaloneSolver
from certman.solvers.shared import Rendezvous
sys.path.insert(0, {tests!r})
from test_shared_challenge_server import _challenge
port = {port}
rendezvous = Rendezvous.under(Path({root!r}), timeout=30)
solver = StandaloneSolver(StandaloneSettings("127.0.0.1", port), rendezvous=rendezvous)
batch = (_challenge("joiner_" + "J" * 40),)
solver.present(batch)
try:
    # What the CA does next: connect to validate.
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        print("answered")
except ConnectionRefusedError:
    print("refused")
finally:
    solver.cleanup(batch)
"""


def test_a_process_joins_a_port_being_claimed_only_once_its_server_listens(tmp_path: Path) -> None:
    port = services.free_port()
    rendezvous = Rendezvous.under(tmp_path, timeout=30)
    binding, bind = threading.Event(), threading.Event()

    def slow_socket(family: int, kind: int) -> socket.socket:
        # The holder has its lock and is about to bind: the window a joiner must not use.
        binding.set()
        bind.wait(30)
        return socket.socket(family, kind)

    holder = StandaloneSolver(StandaloneSettings("127.0.0.1", port), rendezvous=rendezvous, socket_factory=slow_socket)
    batch = (_challenge("holder_" + "H" * 40),)
    presenting = threading.Thread(target=holder.present, args=(batch,))
    presenting.start()
    try:
        assert binding.wait(30)
        code = JOINER.format(tests=str(Path(__file__).parent), port=port, root=str(tmp_path))
        joiner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        # Long enough for the joiner to start and reach the port's locks while the holder binds.
        time.sleep(1.5)
        bind.set()
        out, _ = joiner.communicate(timeout=60)
    finally:
        bind.set()
        presenting.join(30)
        holder.cleanup(batch)

    assert out.strip() == "answered"
