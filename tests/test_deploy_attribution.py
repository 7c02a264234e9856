"""Each deploy error lands on the certificate it is about (issue 12, kind 12).

Two certificates behind one HAProxy reloader, and HAProxy has loaded only one of them:
the runtime API swaps that one in, and only the other is "issued, not deployed". Run as
the timer runs it: the real ``certman`` from ``/`` with ``env -i PATH=/usr/bin:/bin``,
``renew --force --jobs 2`` against the session's Pebble and a real HAProxy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import services
from fixtures.proxies import haproxy_frontend, served_serial_once_settled, tls_ready

from certman.deploy.served import Endpoint
from certman.keystore import FileKeystore

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = ("/usr/bin/env", "-i", "PATH=/usr/bin:/bin")
LOADED, UNKNOWN = "loaded.example", "unknown.example"


def renew_from_timer(keystore: FileKeystore) -> tuple[int, dict[str, dict[str, object]], dict[str, object]]:
    done = subprocess.run(
        [*TIMER_ENV, CERTMAN, "--keystore", str(keystore.root), "renew", "--force", "--jobs", "2", "--json"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr and done.stdout, done.stderr
    report = json.loads(done.stdout)
    return done.returncode, {c["name"]: c for c in report["certificates"]}, report["deploy"]


@pytest.mark.parametrize(
    ("fallback", "unknown_error"),
    [
        # The issue's input: no fallback command, so HAProxy cannot take the unknown one.
        ({}, f"cannot update HAProxy in place: HAProxy has not loaded live/{UNKNOWN}/combined.pem"),
        # The same kind: a fallback reload that fails is about the unknown certificate only.
        ({"command": ["/bin/false"]}, "HAProxy reload failed: /bin/false exited with 1"),
    ],
)
def test_a_certificate_haproxy_does_not_know_fails_alone(
    issue_cert, start_haproxy, keystore: FileKeystore, fallback: dict[str, object], unknown_error: str
) -> None:
    endpoint = Endpoint("127.0.0.1", services.free_port())
    first = issue_cert(LOADED)
    haproxy = start_haproxy(haproxy_frontend(endpoint.port, first.live.combined), tls_ready(endpoint, LOADED))
    table = {"name": "haproxy", "socket": str(haproxy.socket), "verify": [str(endpoint)], **fallback}
    for name in (LOADED, UNKNOWN):
        issue_cert(name, reloaders=(table,))

    code, results, deploy = renew_from_timer(keystore)

    assert code == 7
    loaded, unknown = results[LOADED], results[UNKNOWN]
    assert loaded["action"] == "renewed" and loaded["error"] is None, loaded
    assert served_serial_once_settled(endpoint, LOADED, loaded["serial"]) == loaded["serial"] != first.serial
    assert keystore.read_state(LOADED).deploy.pending is False
    assert unknown["action"] == "renewed"
    assert unknown["error"] == f"issued, not deployed: {unknown_error}"
    assert keystore.read_state(UNKNOWN).deploy.pending is True
    [reload] = deploy["reloads"]  # type: ignore[misc]
    assert reload["names"] == [LOADED, UNKNOWN] and reload["failed"] == [UNKNOWN]
    assert set(deploy["errors"]) == {UNKNOWN}  # type: ignore[arg-type]
