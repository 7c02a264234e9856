"""A wait of over a second shows one updating status line on a terminal, and nothing when piped."""

from __future__ import annotations

import contextlib
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

CERTMAN = str(Path(sys.executable).parent / "certman")


@contextlib.contextmanager
def silent_ca() -> Iterator[int]:
    """A port that accepts connections (into the backlog) and never answers: a stalled CA."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def issue_argv(port: int, timeout: str = "2") -> list[str]:
    return [
        CERTMAN,
        "issue",
        "--server",
        f"https://127.0.0.1:{port}/dir",
        "--agree-tos",
        "--timeout",
        timeout,
        "a.example",
    ]


def env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "CERTMAN_KEYSTORE": str(tmp_path / "ks"), "CERTMAN_CONFIG": "/dev/null"}


def test_a_stalled_ca_shows_what_is_awaited_and_for_how_long_on_a_terminal(tmp_path: Path) -> None:
    with silent_ca() as port:
        # script(1) gives certman a terminal; its output is what the terminal was sent.
        done = subprocess.run(
            ["script", "-qec", shlex.join(issue_argv(port)), "/dev/null"],
            capture_output=True,
            timeout=60,
            env={**env(tmp_path), "TERM": "xterm"},
        )
    screen = done.stdout.decode()  # bytes: universal newlines would turn each \r into \n
    assert done.returncode == 4, screen
    assert f"\r\x1b[Kwaiting for the CA at 127.0.0.1:{port} (1 s)" in screen
    # One line, redrawn in place: no newline between the updates.
    assert "\n" not in screen.split("\r\x1b[Kcertman: ")[0]
    # The line is erased before the error, which starts a clean line.
    assert "\r\x1b[Kcertman: cannot reach the ACME server" in screen
    assert "\nhint: " in screen.replace("\r\n", "\n")


def test_nothing_of_it_when_piped(tmp_path: Path) -> None:
    with silent_ca() as port:
        done = subprocess.run(issue_argv(port, "1.5"), capture_output=True, text=True, timeout=60, env=env(tmp_path))
    assert done.returncode == 4
    assert "waiting" not in done.stderr and "\r" not in done.stderr and "\x1b" not in done.stderr
    assert [line.split(":")[0] for line in done.stderr.splitlines()] == ["certman", "hint"]
