"""The listening socket of a challenge server: "every address" means IPv4 and IPv6.

A CA validates over IPv6 when the name has an AAAA record (RFC 8555 §8.3 leaves the
choice to the CA; Let's Encrypt prefers IPv6), so an empty address binds one dual-stack
socket (``::`` with ``IPV6_V6ONLY`` off), and falls back to ``0.0.0.0`` on a host
without IPv6. An explicit address binds exactly that address, and ``::`` then means
IPv6 only.
"""

from __future__ import annotations

import errno
import socket
import socketserver
from collections.abc import Callable

from ..errors import SolverError

# socket.socket's shape: (family, type) -> socket. A seam for a host without IPv6.
SocketFactory = Callable[[int, int], socket.socket]

# What a kernel without IPv6 (ipv6.disable=1, or no IPv6 module) answers for an AF_INET6 socket.
_NO_IPV6 = (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.EADDRNOTAVAIL)
_CAP_NET_BIND_SERVICE = 10


def family_of(address: str) -> int:
    """AF_INET6 for an IPv6 literal, else AF_INET (an IPv4 literal or a host name)."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def bound_socket(address: str, port: int, *, socket_factory: SocketFactory = socket.socket) -> socket.socket:
    """A TCP socket bound to ``address``:``port`` (not yet listening), with SO_REUSEADDR.

    ``address`` empty: both families. Raises ``OSError`` as ``bind(2)`` does (EADDRINUSE,
    EACCES); the caller turns it into its own error.
    """
    if address:
        return _bind(socket_factory, family_of(address), address, port, v6only=True)
    try:
        return _bind(socket_factory, socket.AF_INET6, "::", port, v6only=False)
    except OSError as exc:
        if exc.errno not in _NO_IPV6:
            raise
    return _bind(socket_factory, socket.AF_INET, "0.0.0.0", port, v6only=False)


def listen_on(
    server: socketserver.TCPServer, address: str, port: int, *, socket_factory: SocketFactory = socket.socket
) -> None:
    """Bind ``server`` (made with ``bind_and_activate=False``) as ``bound_socket`` does, and listen."""
    try:
        sock = bound_socket(address, port, socket_factory=socket_factory)
    except BaseException:
        server.server_close()
        raise
    server.socket.close()
    server.socket = sock
    server.address_family = sock.family
    server.server_address = sock.getsockname()
    try:
        server.server_activate()
    except BaseException:
        server.server_close()
        raise


def listen_problem(address: str, port: int) -> tuple[str, str] | None:
    """Why this process could not listen on ``address``:``port``, and what to do, if that
    shows without binding it.

    Checked before the first request to the CA: an explicit address that is not on this
    host, or a privileged port without CAP_NET_BIND_SERVICE. Whether the port itself is
    free is ``certman.solvers.shared.check_free``'s question: another certman run of the
    keystore may hold it to share.
    """
    if address:
        try:
            bound_socket(address, 0).close()
        except OSError as exc:
            return f"cannot listen on {address}: {exc.strerror}", "listen on an address of this host"
    if 0 < port < _unprivileged_port_start() and not _may_bind_privileged():
        return (
            f"not allowed to listen on {where(address, port)}: port {port} is privileged",
            "run as root (or with CAP_NET_BIND_SERVICE), or listen on a port above 1023 that your "
            "proxy forwards the challenge to (docs/getting-started.md, step 3)",
        )
    return None


def require_listenable(address: str, port: int) -> None:
    """``listen_problem`` as a ``SolverError`` (exit 5), for a solver's ``preflight``."""
    problem = listen_problem(address, port)
    if problem is not None:
        raise SolverError(*problem)


def _unprivileged_port_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as file:
            return int(file.read())
    except (OSError, ValueError):
        return 1024


def _may_bind_privileged() -> bool:
    """Whether this process holds CAP_NET_BIND_SERVICE (root normally does); True if /proc does not say."""
    try:
        with open("/proc/self/status") as file:
            effective = next((line.split()[1] for line in file if line.startswith("CapEff:")), None)
    except OSError:
        return True
    return effective is None or bool(int(effective, 16) & (1 << _CAP_NET_BIND_SERVICE))


def where(address: str, port: int) -> str:
    """``address``:``port`` as an operator reads it: ``*:80``, ``192.0.2.1:80``, ``[::1]:80``."""
    if not address:
        return f"*:{port}"
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _bind(factory: SocketFactory, family: int, address: str, port: int, *, v6only: bool) -> socket.socket:
    sock = factory(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # Set either way: the host default (net.ipv6.bindv6only) must not decide.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
        sock.bind((address, port))
    except BaseException:
        sock.close()
        raise
    return sock
