"""One updating line on stderr while certman waits: what for, and for how long so far.

Shown only when stderr is a terminal (never piped, never under the timer), and only for
a wait of over a second, so fast runs print nothing. A thread redraws it four times a
second from ``progress.active()`` and erases it before anything else is printed.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from .. import progress
from . import terminal

SHOW_AFTER = 1.0  # seconds
TICK = 0.25  # seconds
_ERASE = "\r\x1b[K"


class StatusLine:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._drawn = ""
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="certman-status", daemon=True)

    @classmethod
    def start(cls, stream: TextIO | None = None) -> StatusLine | None:
        """A running status line on ``stream`` (default stderr), or None when it is no terminal."""
        stream = stream or sys.stderr
        isatty = getattr(stream, "isatty", None)
        if not (isatty and isatty()):
            return None
        line = cls(stream)
        progress.Listener.on_end = line.erase
        line._thread.start()
        return line

    def stop(self) -> None:
        progress.Listener.on_end = None
        self._stop.set()
        self._thread.join(timeout=2)
        self.erase()

    def filter(self, record: object) -> bool:
        """A logging filter: erase the line before a log record is printed below it."""
        self.erase()
        return True

    def erase(self) -> None:
        """Remove the line, so the next output starts on a clean one."""
        with self._lock:
            if self._drawn:
                self.stream.write(_ERASE)
                self.stream.flush()
                self._drawn = ""

    def _run(self) -> None:
        import time

        while not self._stop.wait(TICK):
            now = time.monotonic()
            waits = [w for w in progress.active() if now - w.started >= SHOW_AFTER]
            if not waits:
                self.erase()
                continue
            oldest = waits[0]
            tail = f" ({now - oldest.started:.0f} s)"
            # A wait nested in the oldest (a request inside a poll) is the same wait.
            others = len({w.thread for w in waits} - {oldest.thread})
            if others:
                tail += f"; {others} more certificate(s) waiting"
            text = fit(f"waiting for {oldest.what}", tail, terminal.width() - 1)
            with self._lock:
                if text != self._drawn:
                    self.stream.write(_ERASE + text)
                    self.stream.flush()
                    self._drawn = text


def fit(what: str, tail: str, columns: int) -> str:
    """``what`` + ``tail`` in ``columns``: a long ``what`` (many nameservers) is cut with
    an ellipsis, so the time waited so far stays in view."""
    if len(what) + len(tail) <= columns:
        return what + tail
    room = columns - len(tail) - 1
    return (what[:room] + "\u2026" + tail) if room > 0 else (what + tail)[:columns]
