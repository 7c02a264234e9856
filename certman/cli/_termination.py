"""SIGTERM and Ctrl-C as an exception in the main thread, delivered even where CPython would lose it.

A Python signal handler runs in the main thread between bytecodes; raising from it
is how a command's cleanups (solver servers, DNS records, locks) get to run. On its
own that loses a SIGTERM or SIGINT in three ways:

* The signal lands after the main thread last checked for signals and before it
  blocks in a system call: e.g. while it hands the GIL over to the standalone
  solver's server thread right before the ``poll()`` under an SSL read. The flag is
  set, but nothing interrupts that ``poll()``, so the handler runs only when the CA
  answers, which for a CA stalling on a request is many seconds later.
* The handler runs inside a finalizer: an object's ``__del__``, an ``io`` object
  closed by the garbage collector, a weakref callback (importlib's module-lock
  cleanup, during a lazy import). CPython reports or silently drops exceptions
  raised there, and the run carries on as if no signal had come.
* The kernel hands the signal to another thread while the main thread waits on a lock
  (a reload hook's result, from a worker thread): the wait is never interrupted.

So a watcher thread, woken through ``signal.set_wakeup_fd``, nudges the main thread
with a signal that is ignored by default (a nudge that comes late is harmless) until
a nudge finds the exception propagating, or the command is done. Each nudge breaks a
blocking call, so a pending handler runs; a handler that finds no ``Terminated``
propagating raises (again). Once one propagates, a handler leaves it alone, so a
second signal does not cut the cleanups short. SIGINT is taken only where Python took
it: a SIGINT inherited as ignored (``nohup``, a shell's background job) stays ignored.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from typing import Any

# Ignored unless handled, unlike SIGTERM or SIGUSR1: a nudge delivered after the
# handlers are restored cannot kill the process.
NUDGE_SIGNAL = signal.SIGURG
NUDGE_INTERVAL = 0.05
_STOPPING = (signal.SIGTERM, signal.SIGINT)


class Terminated(BaseException):
    """SIGTERM or SIGINT, raised in the main thread so that every cleanup (solvers, locks) runs."""


def _propagating() -> bool:
    """Whether a ``Terminated`` is being handled or unwinding (finally, except, __exit__) here."""
    exc: BaseException | None = sys.exc_info()[1]
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, Terminated):
            return True
        seen.add(id(exc))
        exc = exc.__context__
    return False


class TerminationGuard:
    """Turns SIGTERM and SIGINT into ``Terminated`` in the main thread from ``install`` to ``uninstall``."""

    def __init__(self) -> None:
        self.requested = False
        self.confirmed = False
        self.done = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)
        self._previous: dict[int, Any] = {}
        self._previous_wakeup: int | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def install(cls) -> TerminationGuard | None:
        """A running guard, or None off the main thread (e.g. a test runner thread)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        guard = cls()
        try:
            guard._previous_wakeup = signal.set_wakeup_fd(guard._writer.fileno(), warn_on_full_buffer=False)
            for signum in guard._signals():
                guard._previous[signum] = signal.signal(signum, guard._handler)
        except ValueError:  # not the main interpreter
            guard.uninstall()
            return None
        guard._thread = threading.Thread(target=guard._watch, name="certman-sigterm", daemon=True)
        guard._thread.start()
        return guard

    def uninstall(self) -> None:
        with self._lock:
            self.done = True
        self._stop.set()
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}
        if self._previous_wakeup is not None:
            signal.set_wakeup_fd(self._previous_wakeup)
            self._previous_wakeup = None
        self._writer.close()  # the watcher reads EOF
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._reader.close()

    @staticmethod
    def _signals() -> list[int]:
        taken: list[int] = [signal.SIGTERM, NUDGE_SIGNAL]
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            taken.append(signal.SIGINT)
        return taken

    def _handler(self, signum: int, frame: Any) -> None:
        if self.done:
            return
        if signum in _STOPPING:
            self.requested = True
        if not self.requested:
            return
        if _propagating():
            self.confirmed = True
            return
        raise Terminated()

    def _watch(self) -> None:
        main = threading.main_thread().ident
        assert main is not None
        while True:
            try:
                data = self._reader.recv(64)
            except OSError:
                return
            if not data:
                return
            if not any(signum in data for signum in _STOPPING):
                continue
            while not self._stop.wait(NUDGE_INTERVAL):
                with self._lock:
                    if self.done or self.confirmed:
                        break
                    signal.pthread_kill(main, NUDGE_SIGNAL)
