"""Issue 12 kind 3: what can be checked locally is checked before the first request to the CA.

Each case points certman at the fault proxy in front of the session Pebble and counts
what reached it: nothing. ``renew`` runs as the timer runs it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import services
from fixtures.cli import CertmanRun
from fixtures.fault_proxy import FaultProxy

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = ("/usr/bin/env", "-i", "PATH=/usr/bin:/bin")


def ca(proxy: FaultProxy) -> list[str]:
    return ["--server", proxy.directory_url, "--ca-bundle", str(proxy.ca_bundle), "--agree-tos"]


def requests_seen(proxy: FaultProxy) -> int:
    with proxy.lock:
        return len(proxy.seen)


def not_executable(tmp_path: Path) -> str:
    script = tmp_path / "reload.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    return str(script)


@pytest.mark.parametrize(
    "case, flags, code, said",
    [
        # The issue's inputs.
        ("missing webroot", ["--solver", "webroot", "--webroot", "/nope"], 5, "webroot /nope does not exist"),
        (
            "missing reload program",
            ["--reload-cmd", '["/nope/reload.sh"]'],
            2,
            "program /nope/reload.sh is not an executable file",
        ),
        ("tls-alpn-01 wildcard", ["*.pre.example", "--solver", "tls-alpn-01"], 2, "which TLS-ALPN-01 (tls-alpn-01)"),
        # More of the same kind.
        ("reload program not executable", ["--reload-cmd", "NOT_EXECUTABLE"], 2, "is not an executable file"),
        ("address not on this host", ["--http-address", "192.0.2.1", "--http-port", "8080"], 5, "192.0.2.1"),
        ("dns-01 for an IP address", ["192.0.2.9", "--solver", "dns-01", "--dns-provider", "exec"], 2, "DNS-01"),
        (
            "unreadable TSIG secret file",
            ["--solver", "dns-01", "--dns-provider", "rfc2136"],
            2,
            "cannot read /nope/tsig.key",
        ),
    ],
)
def test_issue_refuses_before_any_request(
    certman: CertmanRun,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    case: str,
    flags: list[str],
    code: int,
    said: str,
) -> None:
    flags = [json.dumps([not_executable(tmp_path)]) if f == "NOT_EXECUTABLE" else f for f in flags]
    # A case that names its own identifier gives it first.
    names = [] if not flags[0].startswith("--") else ["pre.example"]
    env = {
        "CERTMAN_EXEC_PROGRAM": "/bin/true",
        "CERTMAN_RFC2136_SERVER": "127.0.0.1",
        "CERTMAN_RFC2136_KEY_NAME": "certman",
        "CERTMAN_RFC2136_SECRET_FILE": "/nope/tsig.key",
        "CERTMAN_RFC2136_ZONE": "pre.example",
    }

    done = certman("issue", *names, *ca(fault_proxy), *flags, env=env)

    assert done.exit_code == code, done.output
    assert said in done.output
    assert "hint:" in done.output
    assert requests_seen(fault_proxy) == 0, case


def test_renew_refuses_each_broken_certificate_before_any_request(
    certman: CertmanRun, fault_proxy: FaultProxy, pebble: services.Pebble, tmp_path: Path
) -> None:
    hook = tmp_path / "reload.sh"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    http = ["--http-address", "127.0.0.1", "--http-port", str(pebble.http_port)]
    names = ("hooked-a.pre.example", "hooked-b.pre.example")
    for name in names:
        issued = certman("issue", name, *ca(fault_proxy), *http, "--reload-cmd", json.dumps([str(hook)]))
        assert issued.exit_code == 0, issued.output
    hook.unlink()
    fault_proxy.forget_requests()

    done = subprocess.run(
        [*TIMER_ENV, CERTMAN, "--keystore", str(certman.keystore), "renew", "--force", "--jobs", "2", "--json"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )

    results = {r["name"]: r for r in json.loads(done.stdout)["certificates"]}
    assert {n: results[n]["action"] for n in names} == dict.fromkeys(names, "failed"), done.stdout
    assert all(f"program {hook} is not an executable file" in results[n]["error"] for n in names)
    assert requests_seen(fault_proxy) == 0
    assert "Traceback" not in done.stderr


def test_a_privileged_port_without_the_capability_is_refused_before_any_request(
    certman: CertmanRun, fault_proxy: FaultProxy
) -> None:
    # Root without CAP_NET_BIND_SERVICE, as in a container that drops it.
    environ = {"PATH": os.environ["PATH"], "HOME": str(certman.home), "CERTMAN_KEYSTORE": str(certman.keystore)}
    argv = ["setpriv", "--bounding-set", "-net_bind_service", CERTMAN, "issue", "pre.example", *ca(fault_proxy)]

    done = subprocess.run([*argv, "--http-port", "80"], env=environ, capture_output=True, text=True, timeout=60)

    assert done.returncode == 5, done.stderr
    assert "certman: not allowed to listen on *:80: port 80 is privileged" in done.stderr
    assert "hint:" in done.stderr
    assert requests_seen(fault_proxy) == 0


def test_a_dry_run_makes_the_same_checks_before_any_request(certman: CertmanRun, fault_proxy: FaultProxy) -> None:
    done = certman("issue", "pre.example", *ca(fault_proxy), "--solver", "webroot", "--webroot", "/nope", "--dry-run")

    assert done.exit_code == 5, done.output
    assert "webroot /nope does not exist" in done.output
    assert "hint:" in done.output
    assert requests_seen(fault_proxy) == 0


@pytest.mark.parametrize(
    "solver, port_flag", [("standalone", "--http-port"), ("tls-alpn-01", "--tls-port")], ids=["http-01", "tls-alpn-01"]
)
def test_a_port_another_program_holds_is_refused_before_any_request(
    certman: CertmanRun, fault_proxy: FaultProxy, solver: str, port_flag: str
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        address_flag = "--http-address" if solver == "standalone" else "--tls-address"

        done = certman(
            "issue",
            "pre.example",
            *ca(fault_proxy),
            "--solver",
            solver,
            address_flag,
            "127.0.0.1",
            port_flag,
            str(port),
        )

    assert done.exit_code == 5, done.output
    assert f"port 127.0.0.1:{port} is already in use" in done.output
    assert "hint:" in done.output
    assert requests_seen(fault_proxy) == 0


def test_renew_refuses_a_certificate_whose_port_another_program_took_before_any_request(
    certman: CertmanRun, fault_proxy: FaultProxy, pebble: services.Pebble
) -> None:
    http = ["--http-address", "127.0.0.1", "--http-port", str(pebble.http_port)]
    issued = certman("issue", "squatted.pre.example", *ca(fault_proxy), *http)
    assert issued.exit_code == 0, issued.output
    fault_proxy.forget_requests()

    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", pebble.http_port))
        squatter.listen()
        done = subprocess.run(
            [*TIMER_ENV, CERTMAN, "--keystore", str(certman.keystore), "renew", "--force", "--json"],
            cwd="/",
            capture_output=True,
            text=True,
            timeout=120,
        )

    result = json.loads(done.stdout)["certificates"][0]
    assert result["action"] == "failed", done.stdout
    assert f"port 127.0.0.1:{pebble.http_port} is already in use" in result["error"]
    assert requests_seen(fault_proxy) == 0
