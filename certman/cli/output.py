"""Standard output that cannot fail a command: its work is done by the time it prints.

A write to stdout can fail from outside (a full disk behind a redirect, a closed pipe, an
I/O error): certman then says so once on stderr and goes on, and the exit code stays the
one the command's own work earned. Later output goes to /dev/null, so that the
interpreter's own flush at exit fails no more.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO


class Output:
    """``sys.stdout`` for the ``certman`` program; anything it does not define is the stream's."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._failed = False

    def write(self, text: str) -> int:
        if not self._failed:
            try:
                self._stream.write(text)
            except OSError as exc:
                self._lost(exc)
        return len(text)

    def flush(self) -> None:
        if not self._failed:
            try:
                self._stream.flush()
            except OSError as exc:
                self._lost(exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _lost(self, exc: OSError) -> None:
        self._failed = True
        sys.stderr.write(
            f"certman: cannot write the output: {exc.strerror or exc}\n"
            "hint: the command's work went on and its exit code says how it went; "
            "`certman list` shows the certificates\n"
        )
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)
