"""TLS-ALPN-01 (RFC 8737) from a small TLS server of our own.

The CA opens a TLS connection to port 443 (or the configured port) with SNI set to
the identifier and ALPN ``acme-tls/1``, and expects a self-signed certificate for
exactly that name carrying the critical ``acmeIdentifier`` extension: the SHA-256
digest of the key authorization. ``acme`` 5.x dropped this challenge type, so the
ACME message classes are declared here too; importing this module registers them,
which happens before any order because solvers are built first.
"""

from __future__ import annotations

import datetime
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
from .serving import BackgroundServer

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


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], contexts: Mapping[str, ssl.SSLContext]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.contexts = contexts
        # The default context only answers connections for names we do not serve:
        # they get a handshake failure because it has no certificate.
        self.default = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.default.set_alpn_protocols([ALPN_PROTOCOL])
        self.default.sni_callback = self._pick
        super().__init__(address, _Handler)

    def _pick(self, sock: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> int | None:
        chosen = self.contexts.get((server_name or "").lower())
        if chosen is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sock.context = chosen
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
    """Serves one challenge certificate per identifier of the batch, chosen by SNI."""

    challenge_type: ClassVar[str] = "tls-alpn-01"
    settings_classes: ClassVar[tuple[type, ...]] = (TLSALPN01Settings,)

    def __init__(self, settings: TLSALPN01Settings) -> None:
        self.settings = settings
        self._running: BackgroundServer[_Server] | None = None

    @classmethod
    def from_options(cls, options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> TLSALPN01Solver:
        """The solver a ``[[solver]]`` table describes; a bad option is a ConfigError naming it."""
        return cls(settings_from(TLSALPN01Settings, options, plugin="tls-alpn-01 solver", env=env))

    @property
    def port(self) -> int:
        return self._running.port if self._running else self.settings.port

    def present(self, batch: ChallengeBatch) -> None:
        contexts: dict[str, ssl.SSLContext] = {}
        for challenge in batch:
            if challenge.identifier.is_wildcard:
                raise UsageError(
                    f"{challenge.identifier} is a wildcard, which TLS-ALPN-01 cannot validate", "wildcards need DNS-01"
                )
            contexts[sni_name(challenge.identifier)] = _context_for(
                *challenge_certificate(challenge.identifier, challenge.validation)
            )
        self._running = BackgroundServer(
            lambda: _Server((self.settings.address, self.settings.port), contexts),
            where=f"{self.settings.address or '*'}:{self.settings.port}",
            what="TLS-ALPN-01 server",
            in_use_hint="stop what holds it, or use another solver (http-01 or dns-01)",
            denied_hint="run as root, or use another port",
            thread_name="certman-tlsalpn01",
        )

    def wait_ready(self, batch: ChallengeBatch) -> None:
        return None

    def cleanup(self, batch: ChallengeBatch) -> None:
        if self._running is not None:
            self._running.stop()
            self._running = None
