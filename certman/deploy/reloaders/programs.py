"""Run a proxy's own tool (``nginx -t``, ``systemctl reload haproxy``) without a shell, with a timeout.

A bare program name is looked up on PATH and then in the system directories
(``certman.paths.search_path``): nginx and haproxy live in /usr/sbin, which cron's
PATH lacks. The program gets that PATH too.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from ...credentials import scrubbed_env
from ...errors import ReloadError
from ...paths import program_env

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class ProgramResult:
    argv: tuple[str, ...]
    returncode: int
    output: str


def run_program(argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> ProgramResult:
    """Run ``argv``; a missing program or a timeout is a ReloadError, a non-zero exit is returned."""
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
            env=program_env(scrubbed_env()),
        )
    except FileNotFoundError as exc:
        raise ReloadError(
            f"cannot run {argv[0]}: not found",
            "install it, or set the reloader's binary or command option to its full path "
            "(PATH, /usr/sbin and /sbin were searched)",
        ) from exc
    except PermissionError as exc:
        raise ReloadError(
            f"cannot run {argv[0]}: permission denied", "run certman as a user allowed to reload the proxy"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ReloadError(
            f"{' '.join(argv)} did not finish within {timeout:g} s", "check that the proxy's service manager answers"
        ) from exc
    return ProgramResult(tuple(argv), done.returncode, done.stdout.decode(errors="replace"))


def last_words(output: str) -> str:
    """The most telling line of a tool's output: its first error line, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if any(tag in line for tag in ("[emerg]", "[alert]", "[crit]", "[error]", "[ALERT]", "error")):
            return line
    return lines[-1] if lines else "(no output)"
