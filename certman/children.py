"""Every child process certman starts: reload hooks, ``nginx -t``, the exec DNS provider, systemctl.

- A child runs in a session of its own, so its process group holds it and whatever it
  starts; a timeout, Ctrl-C or SIGTERM kills that group (SIGTERM, then SIGKILL after
  ``KILL_GRACE`` seconds).
- It is waited on by its exit status, never by the end of its output: a grandchild
  that keeps stdout open (``sleep 30 &``, a daemon a reload started) holds nobody up.
  Once the child has exited, what its pipes already hold is read, and no more.
- Output is read as it comes with a bound: the last ``OUTPUT_LIMIT`` bytes per stream.
- On exit, the group is left alone: a daemon a reload started keeps running.
- ``kill_all`` kills the group of every child still running; the CLI calls it as a
  command ends. ``stop_all`` also kills every child started from then on, until
  ``accept``: the CLI calls it on Ctrl-C and SIGTERM, so no hook outlives certman's
  exit 130, whichever thread started it, even one a worker thread was starting then.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

OUTPUT_LIMIT = 64 * 1024
KILL_GRACE = 1.0
# How often a child's exit is checked for where the kernel has no pidfd (before Linux 5.3).
_POLL = 0.05
_READ = 65536
_DATA, _EOF, _EMPTY = 1, 0, -1

_lock = threading.Lock()
_running: dict[int, subprocess.Popen[bytes]] = {}
_refusing = False


@dataclass(frozen=True)
class Finished:
    """A child that exited by itself: ``returncode`` (negative: killed by that signal), the output's tails."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes


class ChildTimedOut(Exception):
    """The child ran past its timeout (seconds); its process group was killed. Holds the output so far."""

    def __init__(self, argv: Sequence[str], timeout: float, stdout: bytes, stderr: bytes) -> None:
        super().__init__(f"{argv[0]} did not finish within {timeout:g} s")
        self.argv = tuple(argv)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    timeout: float,
    merge_output: bool = False,
    limit: int = OUTPUT_LIMIT,
) -> Finished:
    """Run ``argv`` (no shell, stdin from /dev/null) until it exits or ``timeout`` seconds pass.

    ``merge_output`` sends stderr into stdout. Raises ``OSError`` when the program cannot
    be started (``FileNotFoundError``, ``PermissionError``) and ``ChildTimedOut``; any
    exception while waiting (``KeyboardInterrupt``, the CLI's SIGTERM) kills the group first.
    """
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
        env=None if env is None else dict(env),
        start_new_session=True,
        close_fds=True,
    )
    with _lock:
        refused = _refusing
        if not refused:
            _running[process.pid] = process
    try:
        if refused:
            _kill_group(process)
        outputs, timed_out = _collect(process, time.monotonic() + timeout, limit)
        if timed_out:
            _kill_group(process)
            raise ChildTimedOut(argv, timeout, bytes(outputs[0]), bytes(outputs[1]))
    except BaseException:
        _kill_group(process)
        raise
    finally:
        with _lock:
            _running.pop(process.pid, None)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    return Finished(tuple(argv), process.returncode, bytes(outputs[0]), bytes(outputs[1]))


def kill_all() -> None:
    """Kill the process group of every child still running."""
    with _lock:
        running = list(_running.values())
    for process in running:
        _kill_group(process)


def stop_all() -> None:
    """Ctrl-C, SIGTERM: kill every child still running, and every child started from now
    on (by a worker thread that has not heard) as soon as it exists, until ``accept``."""
    global _refusing
    with _lock:
        _refusing = True
    kill_all()


def accept() -> None:
    """Start children normally again after ``stop_all`` (the CLI calls it as a command starts)."""
    global _refusing
    with _lock:
        _refusing = False


def _collect(process: subprocess.Popen[bytes], deadline: float, limit: int) -> tuple[list[bytearray], bool]:
    """The tails of stdout and stderr, read until the child exits; True if the deadline came first."""
    pipes = [p for p in (process.stdout, process.stderr) if p is not None]
    tails = [bytearray(), bytearray()]
    which = {pipe.fileno(): index for index, pipe in enumerate((process.stdout, process.stderr)) if pipe is not None}
    for pipe in pipes:
        os.set_blocking(pipe.fileno(), False)
    exited = _pidfd(process.pid)
    with selectors.DefaultSelector() as selector:
        for fd in which:
            selector.register(fd, selectors.EVENT_READ)
        if exited is not None:
            selector.register(exited, selectors.EVENT_READ)
        try:
            while process.poll() is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return tails, True
                wait = remaining if exited is not None else min(remaining, _POLL)
                for key, _ in selector.select(wait):
                    if key.fd != exited and _read_into(key.fd, tails[which[key.fd]], limit) == _EOF:
                        selector.unregister(key.fd)
        finally:
            if exited is not None:
                os.close(exited)
        # Exited: take what the pipes already hold, never wait for a grandchild's EOF.
        for fd, index in which.items():
            while _read_into(fd, tails[index], limit) == _DATA:
                pass
    return tails, False


def _read_into(fd: int, tail: bytearray, limit: int) -> int:
    """Read once into ``tail`` (kept to its last ``limit`` bytes): _DATA, _EOF, or _EMPTY for nothing now."""
    try:
        data = os.read(fd, _READ)
    except BlockingIOError:
        return _EMPTY
    if not data:
        return _EOF
    tail += data
    del tail[:-limit]
    return _DATA


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's group, SIGKILL it after KILL_GRACE seconds, and reap the child."""
    _signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(KILL_GRACE)
    except subprocess.TimeoutExpired:
        pass
    # Also after the leader exited: what it started may still be in the group.
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass
