"""One challenge server per kind, address and port, shared by every order in flight.

In one process, every order that presents on the same port adds its entries (an
HTTP-01 token, a TLS-ALPN-01 SNI name, each with its key authorization) to one
server; ``leave`` removes them again, and the last order to leave stops the server.

Across certman processes on the same keystore (a manual ``issue`` while the timer's
``renew`` holds the port), the ``Rendezvous`` decides who serves:

- the process whose server is bound holds an exclusive flock on
  ``locks/<kind>-<address>-<port>.lock`` for the server's whole life;
- a process that finds that lock held *joins*: it holds a shared flock on
  ``….users`` and writes its entries as files into the spool
  ``challenges/<kind>-<address>-<port>/`` (0700, never through a symlink), which the
  holder's server answers from too;
- the holder stops only once it can take ``….users`` exclusively, so never while a
  joiner still has entries in flight; a joiner that finds the lock free becomes the
  holder itself;
- whoever holds the ``.lock`` without serving (a holder still binding, one stopping,
  ``check_free``'s probe) holds ``….users`` exclusively meanwhile, so nobody joins a
  port that nothing answers.

A port held by anything else (the lock is free, and bind fails) stays "port in use".
Key authorizations are public (RFC 8555 §8.1), but the spool serves only the exact
names the joiners wrote, and each joiner removes its own when it leaves.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec

from ..errors import KeystoreLocked, SolverError
from ..keystore.files import ensure_dir, storage_error
from ..keystore.locks import FIRST_POLL, LAST_POLL
from .serving import BackgroundServer
from .spool import Spool

log = logging.getLogger(__name__)

# Answers an entry's name with its bytes, or None: the server's whole view of what to serve.
Lookup = Callable[[str], bytes | None]
Serve = Callable[[Lookup], BackgroundServer[Any]]

# What may name a spool file: a token (RFC 8555 §8.3) or an SNI name. Never a path,
# never a dot file (the spool's own temporary files start with a dot).
_ENTRY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")


class Rendezvous(msgspec.Struct, frozen=True):
    """Where certman processes of one keystore meet to share a port.

    ``timeout`` (seconds) bounds the wait for a holder that is stopping; ``linger``
    (seconds) bounds how long a holder keeps serving for joiners after its own last order.
    """

    locks: Path
    spool: Path
    timeout: float = 30.0
    linger: float = 300.0

    @classmethod
    def under(cls, root: Path, *, timeout: float) -> Rendezvous:
        """The rendezvous of the keystore at ``root``: its ``locks/`` and ``challenges/``."""
        return cls(root / "locks", root / "challenges", timeout)


@runtime_checkable
class SharesPort(Protocol):
    """A solver whose server another certman process on the same keystore may join."""

    def share_through(self, rendezvous: Rendezvous) -> None: ...


class PortKey(msgspec.Struct, frozen=True):
    kind: str
    address: str
    port: int

    @property
    def stem(self) -> str:
        return f"{self.kind}-{self.address or 'any'}-{self.port}"


class _Port:
    """One shared port in this process: served here (holder) or by another process (joiner)."""

    def __init__(self, key: PortKey, rendezvous: Rendezvous | None) -> None:
        self.key = key
        self.rendezvous = rendezvous
        self.entries: dict[str, bytes] = {}
        self.users = 0
        self.server: BackgroundServer[Any] | None = None
        self.closed = False
        # A thread waits for the joiners of another process to leave (``_linger``).
        self.lingering = False
        self._serve_fd = self._users_fd = -1
        self.spool = Spool(rendezvous.spool / key.stem) if rendezvous is not None else None
        if rendezvous is not None:
            self._serve_fd = _open_lock(rendezvous.locks / f"{key.stem}.lock")
            self._users_fd = _open_lock(rendezvous.locks / f"{key.stem}.users")

    def claim(self, serve: Serve) -> None:
        """Serve the port here, or join the certman process that serves it."""
        try:
            self._claim(serve)
        except BaseException:
            self.close()
            raise

    def _claim(self, serve: Serve) -> None:
        if self.rendezvous is None:
            self.server = serve(self.lookup)
            return
        deadline = time.monotonic() + self.rendezvous.timeout
        delay = FIRST_POLL
        while not _try(self._serve_fd, fcntl.LOCK_EX):
            if _try(self._users_fd, fcntl.LOCK_SH):
                if not _try(self._serve_fd, fcntl.LOCK_EX):
                    # The holder cannot stop while we hold the users lock: it serves our entries.
                    log.info("%s is served by another certman run; joining it", self.key.stem)
                    return
                fcntl.flock(self._users_fd, fcntl.LOCK_UN)
                break
            if time.monotonic() >= deadline:
                raise KeystoreLocked(
                    f"another certman run is stopping its challenge server on {self.key.stem}",
                    "run again in a moment, or set lock_timeout in certman.toml or CERTMAN_LOCK_TIMEOUT",
                )
            time.sleep(delay)
            delay = min(delay * 2, LAST_POLL)
        # The users lock is held until the server listens: a process that finds the serve
        # lock taken and the users lock free joins, and must find a server answering (a
        # joiner in that window once saw Pebble's VA refused, one perspective in three).
        alone = _try(self._users_fd, fcntl.LOCK_EX)
        try:
            if alone and self.spool is not None:
                # Left by a joiner that died: nothing is in flight, so nothing there is current.
                self.spool.clear()
            self.server = serve(self.lookup)
        finally:
            if alone:
                fcntl.flock(self._users_fd, fcntl.LOCK_UN)
        log.debug("%s: serving here", self.key.stem)

    @property
    def joined(self) -> bool:
        return self.server is None

    def add(self, entries: Mapping[str, bytes]) -> None:
        for name in entries:
            if not _ENTRY_NAME.fullmatch(name):
                raise SolverError(f"cannot serve a challenge named {name[:40]!r}", "this CA is misbehaving")
        taken = sorted(set(entries) & set(self.entries))
        if taken:
            raise SolverError(
                f"{', '.join(taken)} is already being validated on {self.key.stem} by another order",
                "run again once that order is done",
            )
        if self.joined and self.spool is not None:
            self.spool.write(entries)
        self.entries.update(entries)

    def remove(self, names: Iterable[str]) -> None:
        for name in names:
            if self.entries.pop(name, None) is not None and self.joined and self.spool is not None:
                self.spool.unlink(name)

    def lookup(self, name: str) -> bytes | None:
        """The bytes for ``name`` from this process's orders, then from the joiners' spool."""
        found = self.entries.get(name)
        if found is not None or self.spool is None or not _ENTRY_NAME.fullmatch(name):
            return found
        return self.spool.read(name)

    def try_stop(self) -> bool:
        """Stop if no joiner is in flight; False while one is."""
        if self.server is not None:
            if self._users_fd >= 0 and not _try(self._users_fd, fcntl.LOCK_EX):
                return False
            self.server.stop()
            log.debug("%s: stopped serving here", self.key.stem)
            if self.spool is not None:
                self.spool.clear()
        self.close()
        return True

    def close(self) -> None:
        self.closed = True
        for fd in (self._serve_fd, self._users_fd):
            if fd >= 0:
                os.close(fd)
        self._serve_fd = self._users_fd = -1


_guard = threading.Lock()
_ports: dict[PortKey, _Port] = {}


def join(key: PortKey, entries: Mapping[str, bytes], *, serve: Serve, rendezvous: Rendezvous | None) -> None:
    """Make ``entries`` answerable on ``key``'s port, starting or joining its one server.

    ``serve(lookup)`` binds and starts the server when this process is to hold the
    port; its SolverError ("port in use") passes through. Raises ``SolverError`` when an
    entry is already in flight, ``KeystoreLocked`` when another run's server does not
    finish stopping within ``rendezvous.timeout`` seconds, ``KeystoreError`` on the spool.
    """
    try:
        with _guard:
            port = _ports.get(key)
            if port is None:
                # Port 0 (any free port) is never the same port twice: nothing to meet about.
                port = _Port(key, rendezvous if key.port else None)
                port.claim(serve)
                _ports[key] = port
            port.users += 1
            port.add(entries)
    except BaseException:
        leave(key, ())  # undo this order's share; a claim that failed registered nothing
        raise


def leave(key: PortKey, names: Iterable[str]) -> None:
    """Take ``names`` off ``key``'s port; the last order to leave stops the server (and frees the port)."""
    with _guard:
        port = _ports.get(key)
        if port is None:
            return
        port.remove(names)
        port.users = max(port.users - 1, 0)
    _stop_when_unused(port)


def check_free(key: PortKey, rendezvous: Rendezvous | None, serve: Serve) -> None:
    """Raise ``serve``'s own ``SolverError`` ("port in use", exit 5) now, before the first
    request to the CA, when ``key``'s port is held by anything but certman of this keystore.

    A port this process serves, or another run of the keystore serves (its lock on
    ``rendezvous`` is held), is joined later, so it passes. Otherwise the server is bound
    and stopped at once. ``KeystoreError`` when a lock file cannot be opened.
    """
    if not key.port:
        return
    with _guard:
        if key in _ports:
            return
        if rendezvous is None:
            serve(_nothing).stop()
            return
        users_fd = _open_lock(rendezvous.locks / f"{key.stem}.users")
        try:
            serve_fd = _open_lock(rendezvous.locks / f"{key.stem}.lock")
            try:
                # Both locks, as a holder that is stopping holds them: a run claiming the port
                # meanwhile waits and binds after us, rather than joining a probe that vanishes.
                # The users lock is taken first and let go last: a claim that found the serve
                # lock held while the users lock was free would join a probe (nobody serves).
                if _try(users_fd, fcntl.LOCK_EX) and _try(serve_fd, fcntl.LOCK_EX):
                    serve(_nothing).stop()
            finally:
                os.close(serve_fd)
        finally:
            os.close(users_fd)


def _nothing(name: str) -> bytes | None:
    return None


def bound_port(key: PortKey) -> int | None:
    """The port ``key``'s server listens on in this process (port 0 binds a free one), if it serves."""
    with _guard:
        port = _ports.get(key)
        return port.server.port if port is not None and port.server is not None else None


def _stop_when_unused(port: _Port) -> None:
    """Stop ``port`` now if nobody uses it; while a joiner does, wait for it in a thread of
    its own, so that the order that left goes on (to finalize) meanwhile. That thread is no
    daemon: the process serves the joiners' entries before it exits."""
    with _guard:
        if port.users or port.closed or port.lingering:
            return
        if port.try_stop():
            del _ports[port.key]
            return
        port.lingering = True
    threading.Thread(target=_linger, args=(port,), name=f"certman-linger-{port.key.stem}").start()


def _linger(port: _Port) -> None:
    deadline = time.monotonic() + (port.rendezvous.linger if port.rendezvous else 0.0)
    delay = FIRST_POLL
    while True:
        time.sleep(delay)
        delay = min(delay * 2, LAST_POLL)
        with _guard:
            if port.users or port.closed:
                port.lingering = False
                return
            if port.try_stop() or time.monotonic() >= deadline:
                if not port.closed:
                    log.warning("stopping %s although another certman run still validates there", port.key.stem)
                    if port.server is not None:
                        port.server.stop()
                    port.close()
                del _ports[port.key]
                return


def _open_lock(path: Path) -> int:
    ensure_dir(path.parent)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise storage_error(exc, path, "opening the lock") from exc


def _try(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
