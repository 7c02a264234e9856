"""Issue 12 kind 2: a child is waited on by its exit status, never by its pipes.

Every child certman starts (command reloader, nginx -t and the reloader programs, the
exec DNS provider, systemctl) goes through ``certman.children``: its own process group,
killed on timeout and on Ctrl-C or SIGTERM; output bounded; a daemon it leaves behind
after a success is left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import services
from fixtures.issuing import wait_until

from certman import children
from certman.deploy.reloaders import Deployment
from certman.deploy.reloaders.command import CommandReloader
from certman.deploy.reloaders.programs import run_program
from certman.errors import ReloadError
from certman.keystore import LivePaths
from certman.solvers.dns01.exec import ExecProvider

CERTMAN = str(Path(sys.executable).parent / "certman")


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture
def left_behind() -> Iterator[list[int]]:
    """Pids a test expects to outlive certman; killed afterwards whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def read_pid(path: Path) -> int:
    wait_until(lambda: path.exists() and path.read_text().strip().isdigit(), f"{path} holds a pid")
    return int(path.read_text())


def deployment(tmp_path: Path) -> Deployment:
    return Deployment("a.example", ("a.example",), "01", LivePaths(tmp_path / "live" / "a.example"))


def test_a_hook_that_leaves_a_daemon_holding_stdout_succeeds_and_the_daemon_lives(
    tmp_path: Path, left_behind: list[int]
) -> None:
    # The issue's input: exits 0 at once, while its background child keeps stdout open.
    daemon = tmp_path / "daemon.pid"
    argv = ["sh", "-c", f'sleep 60 & echo $! > "{daemon}"; echo reloaded; exit 0']

    CommandReloader.from_options({"argv": argv, "timeout": 5}).reload([deployment(tmp_path)])

    left_behind.append(read_pid(daemon))
    assert alive(left_behind[0])


def test_a_hook_past_its_timeout_is_killed_with_everything_it_started(tmp_path: Path, left_behind: list[int]) -> None:
    started = tmp_path / "started.pid"
    argv = ["sh", "-c", f'sleep 60 & echo $! > "{started}"; sleep 60']

    with pytest.raises(ReloadError, match="did not finish within 0.5 s"):
        CommandReloader.from_options({"argv": argv, "timeout": 0.5}).reload([deployment(tmp_path)])

    left_behind.append(read_pid(started))
    wait_until(lambda: not alive(left_behind[0]), "the hook's background child is gone")


def test_an_exec_dns_provider_whose_child_keeps_stdout_open_is_done_when_it_exits(
    tmp_path: Path, left_behind: list[int]
) -> None:
    started = tmp_path / "started.pid"
    program = tmp_path / "provider"
    program.write_text(f'#!/bin/sh\nsleep 60 &\necho $! > "{started}"\nexit 0\n')
    program.chmod(0o700)

    ExecProvider.from_options({"program": str(program), "timeout": 5}, {}).add_txt("_acme-challenge.x.test.", "v")

    left_behind.append(read_pid(started))


def test_a_proxy_tool_whose_child_keeps_stdout_open_is_done_when_it_exits(
    tmp_path: Path, left_behind: list[int]
) -> None:
    # nginx -t, systemctl reload haproxy: the same path, stdout and stderr merged.
    started = tmp_path / "started.pid"
    argv = ["sh", "-c", f'sleep 60 & echo $! > "{started}"; echo "syntax is ok" >&2']

    result = run_program(argv, timeout=5)

    left_behind.append(read_pid(started))
    assert (result.returncode, result.output) == (0, "syntax is ok\n")


def test_output_is_read_with_a_bound_and_keeps_its_tail() -> None:
    done = children.run(
        ["sh", "-c", "head -c 5000000 /dev/zero; echo the-end"], env=None, timeout=30, limit=children.OUTPUT_LIMIT
    )

    assert done.returncode == 0
    assert len(done.stdout) == children.OUTPUT_LIMIT
    assert done.stdout.endswith(b"\0the-end\n")


@contextlib.contextmanager
def issuing_with_a_hook_that_blocks(
    pebble: services.Pebble, tmp_path: Path, name: str, left_behind: list[int]
) -> Iterator[subprocess.Popen[str]]:
    """``certman issue name`` whose reload hook waits on a 60 s child; yielded once both run."""
    hook, started = tmp_path / "hook.pid", tmp_path / "started.pid"
    script = f'echo $$ > "{hook}"; sleep 60 & echo $! > "{started}"; wait'
    argv = [CERTMAN, "--keystore", str(tmp_path / "keystore"), "issue", name]
    argv += ["--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle), "--agree-tos"]
    argv += ["--http-address", "127.0.0.1", "--http-port", str(pebble.http_port)]
    argv += ["--reload-cmd", json.dumps(["sh", "-c", script])]
    environ = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    # A shell starts background jobs with SIGINT ignored, and Python keeps an inherited
    # ignore (as an operator's nohup'd certman should): give certman the default disposition.
    default_sigint = functools.partial(signal.signal, signal.SIGINT, signal.SIG_DFL)
    with subprocess.Popen(
        argv, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    ) as run:
        left_behind.extend([read_pid(hook), read_pid(started)])
        yield run


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_certman_kills_the_running_hook_and_exits_130(
    pebble: services.Pebble, tmp_path: Path, left_behind: list[int], signum: int
) -> None:
    with issuing_with_a_hook_that_blocks(pebble, tmp_path, f"hook-{signum}.example", left_behind) as run:
        run.send_signal(signum)
        _, stderr = run.communicate(timeout=60)

    assert run.returncode == 130, stderr
    assert "certman: interrupted" in stderr
    assert "Traceback" not in stderr
    wait_until(lambda: not any(alive(pid) for pid in left_behind), "the hook and its child are gone")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_the_kernel_hands_to_another_thread_still_stops_certman_at_once(
    pebble: services.Pebble, tmp_path: Path, left_behind: list[int], signum: int
) -> None:
    # While a reload hook runs, the main thread waits on a lock for the worker thread that
    # started it; a process-directed signal may land on any thread. Send it to one that is
    # not the main thread, as the kernel may.
    with issuing_with_a_hook_that_blocks(pebble, tmp_path, f"thread-{signum}.example", left_behind) as run:
        other_thread = max(int(tid) for tid in os.listdir(f"/proc/{run.pid}/task") if int(tid) != run.pid)
        assert ctypes.CDLL(None, use_errno=True).tgkill(run.pid, other_thread, signum) == 0
        _, stderr = run.communicate(timeout=30)

    assert (run.returncode, stderr.strip()) == (130, "certman: interrupted")
    wait_until(lambda: not any(alive(pid) for pid in left_behind), "the hook and its child are gone")


def test_a_child_started_while_certman_stops_is_killed_as_it_starts(tmp_path: Path) -> None:
    # A worker thread that has not heard of the Ctrl-C yet starts its hook after kill_all.
    children.stop_all()
    try:
        done = children.run(["sh", "-c", "sleep 60 & wait"], env=None, timeout=20)
    finally:
        children.accept()

    assert done.returncode == -signal.SIGTERM


def test_issue_with_a_hook_that_starts_a_daemon_is_deployed_and_the_daemon_outlives_certman(
    pebble: services.Pebble, tmp_path: Path, left_behind: list[int]
) -> None:
    daemon = tmp_path / "daemon.pid"
    hook = ["sh", "-c", f'sleep 60 & echo $! > "{daemon}"; echo reloaded; exit 0']
    argv = [CERTMAN, "--keystore", str(tmp_path / "keystore"), "issue", "daemon.example", "--json"]
    flags = ["--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle), "--agree-tos"]
    flags += ["--http-address", "127.0.0.1", "--http-port", str(pebble.http_port), "--reload-cmd", json.dumps(hook)]
    environ = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}

    done = subprocess.run([*argv, *flags], env=environ, capture_output=True, text=True, timeout=120)

    left_behind.append(read_pid(daemon))
    assert done.returncode == 0, done.stderr
    assert [r["error"] for r in json.loads(done.stdout)["deploy"]["reloads"]] == [None]
    assert alive(left_behind[0])


def test_a_first_issue_interrupted_mid_reload_leaves_the_reload_to_the_next_renew(
    pebble: services.Pebble, tmp_path: Path, left_behind: list[int]
) -> None:
    hook, started, hold = tmp_path / "hook.pid", tmp_path / "started.pid", tmp_path / "hold"
    hold.touch()
    script = f'if [ -e "{hold}" ]; then echo $$ > "{hook}"; sleep 60 & echo $! > "{started}"; wait; fi'
    keystore = tmp_path / "keystore"
    flags = ["--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle), "--agree-tos"]
    flags += ["--http-address", "127.0.0.1", "--http-port", str(pebble.http_port)]
    argv = [CERTMAN, "--keystore", str(keystore), "issue", "cut.example", *flags, "--reload-cmd"]
    environ = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    with subprocess.Popen([*argv, json.dumps(["sh", "-c", script])], env=environ, stderr=subprocess.PIPE) as run:
        left_behind.extend([read_pid(hook), read_pid(started)])
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=60)
    hold.unlink()

    renewed = subprocess.run(
        ["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", CERTMAN, "--keystore", str(keystore), "renew", "--json"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert run.returncode == 130
    assert renewed.returncode == 0, renewed.stderr
    assert [r["action"] for r in json.loads(renewed.stdout)["certificates"]] == ["deployed"]
