"""Run a proxy's own tool (``nginx -t``, ``systemctl reload haproxy``) without a shell, with a timeout.

It runs as every child of certman does (``certman.children``): waited on by its exit
status, its process group killed on timeout, output bounded.

A bare program name is looked up on PATH and then in the system directories
(``certman.paths.search_path``): nginx and haproxy live in /usr/sbin, which cron's
PATH lacks. The program gets that PATH too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ... import children
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
    """Run ``argv`` for at most ``timeout`` seconds; a missing program or a timeout is a ReloadError,
    a non-zero exit is returned (with the tail of its output, stdout and stderr merged)."""
    try:
        done = children.run(argv, env=program_env(scrubbed_env()), timeout=timeout, merge_output=True)
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
    except children.ChildTimedOut as exc:
        raise ReloadError(
            f"{' '.join(argv)} did not finish within {timeout:g} s; it was killed",
            "check that the proxy's service manager answers",
        ) from exc
    return ProgramResult(tuple(argv), done.returncode, done.stdout.decode(errors="replace"))


def last_words(output: str) -> str:
    """The most telling line of a tool's output: its first error line, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if any(tag in line for tag in ("[emerg]", "[alert]", "[crit]", "[error]", "[ALERT]", "error")):
            return line
    return lines[-1] if lines else "(no output)"
