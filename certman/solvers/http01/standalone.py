"""HTTP-01 from a small server of our own, on port 80 or on a loopback port a proxy forwards to.

Every order in flight on the same address and port shares one server (``shared``):
in a ``renew --jobs N`` run, and with another certman on the same keystore.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from ...plugins.settings import Port, Seconds, setting, settings_from
from .. import ChallengeBatch
from ..listen import SocketFactory, family_of, listen_on, require_listenable, where
from ..serving import BackgroundServer
from ..shared import Lookup, PortKey, Rendezvous, bound_port, check_free, join, leave
from . import WELL_KNOWN, check_token

log = logging.getLogger(__name__)

# Per-connection socket timeout, so a client that opens a connection and sends
# nothing (slowloris) costs one thread for a few seconds, never the validation.
CONNECTION_TIMEOUT = 5.0


@dataclass(frozen=True)
class StandaloneSettings:
    address: str = setting(help="Address to listen on; empty: every address.", default="")
    port: Port = setting(help="Port to listen on; the CA connects to 80, which a proxy may forward.", default=80)
    connection_timeout: Seconds = setting(
        help="Seconds one connection may stay idle before it is closed.", default=CONNECTION_TIMEOUT
    )


class _Server(ThreadingHTTPServer):
    # http.server listens with a backlog of 5, which stalls concurrent validations
    # (a CA validates from several perspectives at once) for a second.
    request_queue_size = 128
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], lookup: Lookup, connection_timeout: float, socket_factory: SocketFactory
    ) -> None:
        self.address_family = family_of(address[0])
        self.lookup = lookup
        self.connection_timeout = connection_timeout
        # Bound by listen_on: HTTPServer.server_bind would also resolve our own name (getfqdn).
        super().__init__(address, _Handler, bind_and_activate=False)
        listen_on(self, *address, socket_factory=socket_factory)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "certman"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.connection_timeout)

    def do_GET(self) -> None:
        token = self.path[len(WELL_KNOWN) :] if self.path.startswith(WELL_KNOWN) else ""
        body = self.server.lookup(token) if token else None
        if body is None:
            self._not_found()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _not_found(self) -> None:
        # Only GET on a token of an order in flight is answered; anything else learns nothing.
        self.send_error(404)

    do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_TRACE = do_CONNECT = _not_found

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("standalone %s: " + format, self.client_address[0], *args)


class StandaloneSolver:
    """Answers exactly the tokens of the orders in flight on its port; everything else is a 404.

    ``rendezvous`` (the keystore's, given by ``share_through``) lets another certman
    process on the same keystore join this server, or this one join theirs. An empty
    address listens on IPv6 and IPv4 (``certman.solvers.listen``); ``socket_factory``
    stands in for ``socket.socket``.
    """

    challenge_type: ClassVar[str] = "http-01"
    settings_classes: ClassVar[tuple[type, ...]] = (StandaloneSettings,)

    def __init__(
        self,
        settings: StandaloneSettings,
        *,
        rendezvous: Rendezvous | None = None,
        socket_factory: SocketFactory = socket.socket,
    ) -> None:
        self.settings = settings
        self.rendezvous = rendezvous
        self.socket_factory = socket_factory
        self._key = PortKey("http01", settings.address, settings.port)
        # One list of names per present() not yet cleaned up: each is one share of the server.
        self._presented: list[list[str]] = []

    @classmethod
    def from_options(cls, options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> StandaloneSolver:
        """The solver a ``[[solver]]`` table describes; a bad option is a ConfigError naming it."""
        return cls(settings_from(StandaloneSettings, options, plugin="standalone solver", env=env))

    def share_through(self, rendezvous: Rendezvous) -> None:
        self.rendezvous = rendezvous

    def preflight(self) -> None:
        """Raise ``SolverError`` (exit 5) when this host cannot listen where the settings say,
        or another program holds the port (``certman.solvers.shared.check_free``)."""
        require_listenable(self.settings.address, self.settings.port)
        check_free(self._key, self.rendezvous, self._serve)

    @property
    def port(self) -> int:
        return bound_port(self._key) or self.settings.port

    def present(self, batch: ChallengeBatch) -> None:
        """Add the batch's tokens to the port's one server, starting it if none runs.

        Raises SolverError when the port is taken by anything but certman on this keystore.
        """
        entries = {check_token(c.token): c.validation.encode() for c in batch}
        join(self._key, entries, serve=self._serve, rendezvous=self.rendezvous)
        self._presented.append(list(entries))

    def wait_ready(self, batch: ChallengeBatch) -> None:
        return None

    def cleanup(self, batch: ChallengeBatch) -> None:
        """Take the tokens this solver presented off the server, and no other order's; the last to leave stops it."""
        for presented in self._presented:
            leave(self._key, presented)
        self._presented.clear()

    def _serve(self, lookup: Lookup) -> BackgroundServer[_Server]:
        settings = self.settings
        return BackgroundServer(
            lambda: _Server(
                (settings.address, settings.port), lookup, settings.connection_timeout, self.socket_factory
            ),
            where=where(settings.address, settings.port),
            what="HTTP-01 server",
            in_use_hint="stop what holds it, or let your proxy forward /.well-known/acme-challenge/ "
            "to a free --http-port, or use --solver webroot (a stored certificate: `certman reconfigure NAME ...`)",
            denied_hint="run as root, or use --http-port above 1023 behind your proxy",
            thread_name="certman-http01",
        )
