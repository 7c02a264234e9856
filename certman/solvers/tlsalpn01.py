"""TLS-ALPN-01 (RFC 8737) from a small TLS server of our own.

The CA opens a TLS connection to port 443 (or the configured port) with SNI set to
the identifier and ALPN ``acme-tls/1``, and expects a self-signed certificate for
exactly that name carrying the critical ``acmeIdentifier`` extension: the SHA-256
digest of the key authorization. ``acme`` 5.x dropped this challenge type, so the
ACME message classes are declared here too; importing this module registers them,
which happens before any order because solvers are built first.

Every order in flight on the same address and port shares one server (``shared``);
it picks each challenge certificate by SNI.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import ipaddress
import logging
import socket
import socketserver
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from acme import challenges
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from josepy import jwk

from ..errors import UsageError
from ..keystore.times import Clock, utc_now
from ..names import Identifier
from ..plugins.settings import Port, setting, settings_from
from . import ChallengeBatch
from .listen import SocketFactory, family_of, listen_on, require_listenable, where
from .serving import BackgroundServer
from .shared import Lookup, PortKey, Rendezvous, bound_port, check_free, join, leave

log = logging.getLogger(__name__)

ALPN_PROTOCOL = "acme-tls/1"
# id-pe-acmeIdentifier, RFC 8737 §6.1.
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
HANDSHAKE_TIMEOUT = 5.0


@challenges.ChallengeResponse.register
class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    typ = "tls-alpn-01"


@challenges.Challenge.register
class TLSALPN01(challenges.KeyAuthorizationChallenge):
    """The tls-alpn-01 challenge; its validation is the key authorization the certificate digests."""

    response_cls = TLSALPN01Response
    typ = response_cls.typ

    def validation(self, account_key: jwk.JWK, **kwargs: Any) -> str:
        return self.key_authorization(account_key)


def sni_name(identifier: Identifier) -> str:
    """The SNI the CA sends: the name itself, or for an IP its reverse-DNS name (RFC 8738 §6)."""
    if identifier.type == "ip":
        return ipaddress.ip_address(identifier.value).reverse_pointer
    return identifier.value


def challenge_certificate(
    identifier: Identifier, key_authorization: str, clock: Clock = utc_now
) -> tuple[bytes, bytes]:
    """A self-signed (cert PEM, key PEM) for ``identifier`` with the acmeIdentifier extension."""
    now = clock()
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(key_authorization.encode()).digest()
    # The extension value is the DER OCTET STRING holding the digest.
    extension_der = bytes([0x04, len(digest)]) + digest
    san: x509.GeneralName = (
        x509.IPAddress(ipaddress.ip_address(identifier.value))
        if identifier.type == "ip"
        else x509.DNSName(identifier.value)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certman tls-alpn-01")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, extension_der), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _context_for(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols([ALPN_PROTOCOL])
    # ssl loads certificates only from files; a private directory keeps the key
    # out of reach and is gone as soon as the context holds it.
    with tempfile.TemporaryDirectory(prefix="certman-alpn-") as tmp:
        cert_path, key_path = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_path.write_bytes(cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key_pem)
        context.load_cert_chain(cert_path, key_path)
    return context


def _entry(identifier: Identifier, key_authorization: str) -> bytes:
    """What the shared server holds for one SNI name: the identifier and its key authorization."""
    return f"{identifier.type}\n{identifier.value}\n{key_authorization}".encode()


# One context per challenge, built on its first handshake: a key authorization is new
# for every challenge, so an entry never maps to a stale certificate.
@functools.lru_cache(maxsize=256)
def _context_of(entry: bytes) -> ssl.SSLContext:
    kind, value, key_authorization = entry.decode().split("\n", 2)
    identifier = Identifier("ip" if kind == "ip" else "dns", value)
    return _context_for(*challenge_certificate(identifier, key_authorization))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], lookup: Lookup, socket_factory: SocketFactory) -> None:
        self.address_family = family_of(address[0])
        self.lookup = lookup
        # The default context only answers connections for names we do not serve:
        # they get a handshake failure because it has no certificate.
        self.default = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.default.set_alpn_protocols([ALPN_PROTOCOL])
        self.default.sni_callback = self._pick
        super().__init__(address, _Handler, bind_and_activate=False)
        listen_on(self, *address, socket_factory=socket_factory)

    def _pick(self, sock: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> int | None:
        entry = self.lookup((server_name or "").lower()) if server_name else None
        if entry is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        try:
            sock.context = _context_of(entry)
        except (ValueError, ssl.SSLError) as exc:  # a spool file another process left half-made
            log.debug("tls-alpn-01: no certificate for %s: %s", server_name, exc)
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        return None


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            with self.server.default.wrap_socket(self.request, server_side=True) as tls:
                if tls.selected_alpn_protocol() != ALPN_PROTOCOL:
                    # RFC 8737 §3: the challenge certificate is for acme-tls/1 clients only.
                    log.debug("tls-alpn-01: %s connected without acme-tls/1", self.client_address[0])
        except (ssl.SSLError, OSError) as exc:
            log.debug("tls-alpn-01: handshake with %s failed: %s", self.client_address[0], exc)


@dataclass(frozen=True)
class TLSALPN01Settings:
    address: str = setting(help="Address to listen on; empty: every address.", default="")
    port: Port = setting(help="Port to listen on; the CA connects to 443, which a proxy may forward.", default=443)


class TLSALPN01Solver:
    """Serves one challenge certificate per identifier of the orders in flight on its port, chosen by SNI.

    ``rendezvous`` (the keystore's, given by ``share_through``) lets another certman
    process on the same keystore join this server, or this one join theirs. An empty
    address listens on IPv6 and IPv4 (``certman.solvers.listen``); ``socket_factory``
    stands in for ``socket.socket``.
    """

    challenge_type: ClassVar[str] = "tls-alpn-01"
    settings_classes: ClassVar[tuple[type, ...]] = (TLSALPN01Settings,)

    def __init__(
        self,
        settings: TLSALPN01Settings,
        *,
        rendezvous: Rendezvous | None = None,
        socket_factory: SocketFactory = socket.socket,
    ) -> None:
        self.settings = settings
        self.rendezvous = rendezvous
        self.socket_factory = socket_factory
        self._key = PortKey("tlsalpn01", settings.address, settings.port)
        # One list of names per present() not yet cleaned up: each is one share of the server.
        self._presented: list[list[str]] = []

    @classmethod
    def from_options(cls, options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> TLSALPN01Solver:
        """The solver a ``[[solver]]`` table describes; a bad option is a ConfigError naming it."""
        return cls(settings_from(TLSALPN01Settings, options, plugin="tls-alpn-01 solver", env=env))

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
        """Add the batch's SNI names to the port's one server, starting it if none runs.

        Raises UsageError for a wildcard, SolverError when the port is taken or a name is
        already being validated there by another order.
        """
        entries: dict[str, bytes] = {}
        for challenge in batch:
            if challenge.identifier.is_wildcard:
                raise UsageError(
                    f"{challenge.identifier} is a wildcard, which TLS-ALPN-01 cannot validate", "wildcards need DNS-01"
                )
            entry = _entry(challenge.identifier, challenge.validation)
            _context_of(entry)  # built now, so a failure is this order's SolverError, not a handshake alert
            entries[sni_name(challenge.identifier)] = entry
        join(self._key, entries, serve=self._serve, rendezvous=self.rendezvous)
        self._presented.append(list(entries))

    def wait_ready(self, batch: ChallengeBatch) -> None:
        return None

    def cleanup(self, batch: ChallengeBatch) -> None:
        """Take the names this solver presented off the server, and no other order's; the last to leave stops it."""
        for presented in self._presented:
            leave(self._key, presented)
        self._presented.clear()

    def _serve(self, lookup: Lookup) -> BackgroundServer[_Server]:
        settings = self.settings
        return BackgroundServer(
            lambda: _Server((settings.address, settings.port), lookup, self.socket_factory),
            where=where(settings.address, settings.port),
            what="TLS-ALPN-01 server",
            in_use_hint="stop what holds it, or use another solver (http-01 or dns-01; a stored certificate: "
            "`certman reconfigure NAME --solver ...`)",
            denied_hint="run as root, or use another port",
            thread_name="certman-tlsalpn01",
        )
