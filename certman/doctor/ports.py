"""The ports the standalone solvers listen on: free now, or held by whom.

A certificate keeps the solver it was issued with, so a port that was free at the first
``certman issue`` may belong to nginx by the next renewal. Each stored and declared
certificate's port is checked, and a held port names the process that holds it.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ..solvers.listen import bound_socket, where
from .report import Check, owners_text

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column


def check_port(
    solver: str, address: str, port: int, *, owners: tuple[str, ...] = (), keystore: Path | None = None
) -> Check:
    """The solver's listening port can be bound now (then released); ``owners`` are the certificates using it.

    A port held by certman's own shared challenge server for ``keystore``
    (``certman.solvers.shared``) is OK: a run of that keystore joins that server.
    """
    shown = where(address, port)
    try:
        # Bound as the solver binds: an empty address takes IPv6 and IPv4.
        bound_socket(address, port).close()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            return Check(
                f"{solver} port",
                False,
                f"cannot bind {shown}: {exc.strerror}{owners_text(owners)}",
                "run as root or choose a port above 1023",
            )
        server = shared_server_pid(keystore, solver, address, port) if keystore is not None else None
        if server is not None:
            return Check(
                f"{solver} port",
                True,
                f"{shown} is held by certman's shared challenge server, pid {server}, which this "
                f"keystore's runs join{owners_text(owners)}",
            )
        held = ", ".join(holders(port)) or "a process of another user"
        return Check(
            f"{solver} port",
            False,
            f"cannot bind {shown}: {exc.strerror}; held by {held}{owners_text(owners)}",
            "stop what holds it, or move the solver to a free port your proxy forwards /.well-known/acme-challenge/ to",
        )
    return Check(f"{solver} port", True, f"{shown} is free to bind{owners_text(owners)}")


def shared_server_pid(keystore: Path, solver: str, address: str, port: int) -> int | str | None:
    """The pid of the certman process serving ``solver``'s port for ``keystore`` (its flock on
    ``locks/<kind>-<address>-<port>.lock`` is held); "unknown" when /proc/locks does not say;
    None when no certman run of this keystore serves it. Creates nothing."""
    from ..solvers.shared import PortKey

    kind = {"standalone": "http01", "tls-alpn-01": "tlsalpn01"}.get(solver)
    if kind is None:
        return None
    lock = keystore / "locks" / f"{PortKey(kind, address, port).stem}.lock"
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _flock_holder(os.fstat(fd).st_ino) or "unknown"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _flock_holder(inode: int) -> int | None:
    """The pid /proc/locks names for the exclusive flock on ``inode``."""
    try:
        rows = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for row in rows:
        fields = row.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[3] == "WRITE" and fields[5].endswith(f":{inode}"):
            return int(fields[4])
    return None


def holders(port: int) -> list[str]:
    """Who listens on TCP ``port``, as ``nginx (pid 10, 11)``; empty when /proc does not tell."""
    sockets = set(_listening_inodes(port))
    pids: dict[str, list[int]] = {}
    for pid, name in _processes_holding(sockets):
        pids.setdefault(name, []).append(pid)
    return [f"{name} (pid {', '.join(str(p) for p in sorted(found))})" for name, found in sorted(pids.items())]


def _listening_inodes(port: int) -> Iterator[str]:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rpartition(":")[2], 16) == port:
                yield f"socket:[{fields[9]}]"


def _processes_holding(sockets: set[str]) -> Iterator[tuple[int, str]]:
    if not sockets:
        return
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if sockets & set(_links(f"/proc/{entry.name}/fd")):
                yield int(entry.name), Path(f"/proc/{entry.name}/comm").read_text().strip()
        except OSError:
            continue  # gone meanwhile, or another user's: /proc does not tell us


def _links(fd_dir: str) -> Iterator[str]:
    with os.scandir(fd_dir) as fds:
        for fd in fds:
            try:
                yield os.readlink(fd.path)
            except OSError:
                continue  # closed while we looked
