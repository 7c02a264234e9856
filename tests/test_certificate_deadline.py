"""One deadline per certificate covers all it does with its CA in a run (issue 12, kind 8).

Against a CA that accepts TCP and never answers, each certificate's renewal used to wait
out ``--timeout`` for the ARI check's directory fetch and then a fresh ``--timeout`` for
issuance. Counted at the silent CA rather than timed: each certificate may hold at most
one connection (one stall), and every certificate reports that its deadline passed.
Run as the timer runs it: the real ``certman`` from ``/`` with ``env -i PATH=/usr/bin:/bin``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import services

from certman.keystore import FileKeystore, ca_id

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = ("/usr/bin/env", "-i", "PATH=/usr/bin:/bin")
NAMES = ("silent-a.example", "silent-b.example", "silent-c.example")
TIMEOUT = 2


class SilentCA:
    """Accepts every connection and never says a word; counts the connections."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}/dir"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        # shutdown wakes the thread blocked in accept(); close alone does not.
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent_ca() -> Iterator[SilentCA]:
    ca = SilentCA()
    yield ca
    ca.close()


def test_renew_against_a_silent_ca_spends_one_timeout_per_certificate(
    issue_cert, pebble: services.Pebble, keystore: FileKeystore, silent_ca: SilentCA
) -> None:
    for name in NAMES:
        issue_cert(name)
        # The CA moved to a host that accepts connections and never answers.
        keystore.write_spec(replace(keystore.read_spec(name), server=silent_ca.url))
    # With the account known there, the renewal asks for renewal information first (RFC 9773).
    stored = keystore.load_account(ca_id(pebble.directory_url))
    assert stored is not None
    keystore.save_account(ca_id(silent_ca.url), *stored)

    done = subprocess.run(
        [*TIMER_ENV, CERTMAN, "--keystore", str(keystore.root), "renew", "--force", "--json"]
        + ["--timeout", str(TIMEOUT), "--jobs", str(len(NAMES))],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 7, done.stderr
    assert "Traceback" not in done.stderr
    results = json.loads(done.stdout)["certificates"]
    assert [r["action"] for r in results] == ["failed"] * len(NAMES)
    gave_up = f"gave up on the ACME server at {silent_ca.url}: the deadline passed (--timeout {TIMEOUT} s "
    for result in results:
        assert result["error"].startswith(gave_up) or result["error"].endswith(": timed out"), result
    # The ARI check and the issuance of a certificate share one deadline: at most one
    # stalled connection per certificate (it was one for the ARI check, then one more for
    # each issuance, each with a fresh --timeout).
    assert len(silent_ca.held) <= len(NAMES)
