"""Prove that a proxy serves the stored leaf: a TLS handshake with SNI, then a byte comparison.

A reload that "succeeded" proves little: nginx returns before its workers restart,
HAProxy may hold the certificate under another name, and a hook can exit 0 after
failing (certbot #8528). So after a reload certman connects to each endpoint the
operator named, sends the certificate's name as SNI and compares the served leaf
with ``live/<name>/cert.pem``, retrying briefly while the proxy switches over.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import ConfigError, ReloadVerifyFailed
from ..plugins.settings import setting, settings_from
from .reloaders import Deployment

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
HANDSHAKE_TIMEOUT = 2.0
FIRST_RETRY = 0.02
MAX_RETRY = 0.5
# After a reload the old workers may still accept a few connections while they drain
# (nginx's graceful reload), so one good handshake is not yet proof: ask for several.
CONFIRMATIONS = 3


@dataclass(frozen=True)
class Endpoint:
    """Where a proxy listens for TLS; ``sni`` overrides the certificate's first DNS name."""

    host: str
    port: int
    sni: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.sni}@{host}:{self.port}" if self.sni else f"{host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``host:port``, ``[v6]:port``, or ``sni@host:port`` to send another server name."""
        sni, _, address = text.rpartition("@")
        host, sep, port = address.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"invalid verify endpoint {text!r}",
                'write it as host:port, e.g. "127.0.0.1:443" or "www.example@127.0.0.1:443"',
            )
        return cls(host, int(port), sni or None)


@dataclass(frozen=True)
class VerifySettings:
    """The setting every reloader table has: read by the deploy step, after the reload."""

    verify: tuple[Endpoint, ...] = setting(
        help="Endpoints (host:port, [v6]:port or sni@host:port) that must serve the new certificate "
        "after the reload, checked by a TLS handshake; default: none.",
        default=(),
    )


# A reloader table's keys that are not the reloader's own settings: ``name`` chose the
# plugin, ``verify`` belongs to the deploy step (VerifySettings).
TABLE_KEYS = ("name", "verify")


def reloader_settings(cls: type[T], options: Mapping[str, Any], *, plugin: str) -> T:
    """A reloader's settings ``cls`` from its ``[[reloader]]`` table, ``verify`` checked too.

    Raises ConfigError naming ``plugin`` and the option, as ``settings_from`` does.
    """
    settings_from(VerifySettings, {k: v for k, v in options.items() if k == "verify"}, plugin=plugin, env={})
    return settings_from(cls, options, plugin=plugin, env={}, ignore=TABLE_KEYS)


def endpoints_from_options(options: Mapping[str, Any]) -> tuple[Endpoint, ...]:
    """The ``verify = ["127.0.0.1:443", ...]`` option of a reloader table; a bad one is a ConfigError."""
    plugin = f"{options.get('name', 'the')} reloader"
    verify = {k: v for k, v in options.items() if k == "verify"}
    return settings_from(VerifySettings, verify, plugin=plugin, env={}).verify


@dataclass(frozen=True)
class ServedCheck:
    """What one endpoint served for one certificate."""

    name: str
    endpoint: Endpoint
    stored_serial: str
    served_serial: str | None
    error: str | None = None

    @property
    def is_ok(self) -> bool:
        return self.error is None and self.served_serial == self.stored_serial


def served_leaf(endpoint: Endpoint, server_name: str | None, *, timeout: float = HANDSHAKE_TIMEOUT) -> bytes:
    """The DER leaf ``endpoint`` presents to a client sending ``server_name`` as SNI."""
    # Trust is not the question here, identity is: the served leaf must be byte for
    # byte the stored one, which a chain check could not establish anyway.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server sent no certificate")
    return der


def serial_of(der: bytes) -> str:
    from cryptography import x509

    return format(x509.load_der_x509_certificate(der).serial_number, "x")


def server_name_for(deployment: Deployment, endpoint: Endpoint) -> str | None:
    if endpoint.sni:
        return endpoint.sni
    # SNI carries DNS names only (RFC 6066 §3); an IP-only certificate is asked for without it.
    for ident in deployment.identifiers:
        if not _is_ip(ident):
            return ident.replace("*.", "certman-verify.", 1)
    return None


def _is_ip(value: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
    except OSError:
        return False
    return True


def check_once(deployment: Deployment, endpoint: Endpoint, stored_der: bytes, stored_serial: str) -> ServedCheck:
    """One handshake; a connection or TLS failure is reported in ``error``, never raised."""
    try:
        der = served_leaf(endpoint, server_name_for(deployment, endpoint))
    except (OSError, ssl.SSLError) as exc:
        return ServedCheck(deployment.name, endpoint, stored_serial, None, _describe(exc))
    served_serial = serial_of(der)
    if der != stored_der and served_serial == stored_serial:
        return ServedCheck(deployment.name, endpoint, stored_serial, served_serial, "same serial but different bytes")
    return ServedCheck(deployment.name, endpoint, stored_serial, served_serial)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, socket.timeout):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def stored_leaf(deployment: Deployment) -> tuple[bytes, str]:
    """The DER and serial of the live leaf, read from ``live/<name>/cert.pem``."""
    try:
        pem = deployment.live.cert.read_text()
    except OSError as exc:
        raise ReloadVerifyFailed(
            f"{deployment.name}: cannot read {deployment.live.cert}: {exc.strerror}",
            "check the keystore; `certman list` shows what is stored",
        ) from exc
    der = ssl.PEM_cert_to_DER_cert(pem)
    return der, serial_of(der)


def check_served(
    deployment: Deployment,
    endpoints: Iterable[Endpoint],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[ServedCheck, ...]:
    """One final ``ServedCheck`` per endpoint, each retried until it passes or ``timeout`` runs out."""
    stored_der, stored_serial = stored_leaf(deployment)
    checks = []
    for endpoint in endpoints:
        deadline = clock() + timeout
        delay = FIRST_RETRY
        confirmed = 0
        while True:
            check = check_once(deployment, endpoint, stored_der, stored_serial)
            confirmed = confirmed + 1 if check.is_ok else 0
            if confirmed >= CONFIRMATIONS or clock() + delay > deadline:
                break
            if check.is_ok:
                sleep(FIRST_RETRY)
                continue
            sleep(delay)
            delay = min(delay * 2, MAX_RETRY)
        checks.append(check)
    return tuple(checks)


def verify_served(
    deployment: Deployment,
    endpoints: Iterable[Endpoint],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[ServedCheck, ...]:
    """Check that every endpoint serves the live leaf of ``deployment``, retrying until ``timeout``.

    Returns one passing ``ServedCheck`` per endpoint, or raises ``ReloadVerifyFailed``
    naming the first failing endpoint and both serials.
    """
    checks = check_served(deployment, endpoints, timeout=timeout, clock=clock, sleep=sleep)
    for check in checks:
        if not check.is_ok:
            raise verify_error(check, timeout)
    return checks


def verify_error(check: ServedCheck, timeout: float) -> ReloadVerifyFailed:
    what = (
        f"could not fetch its certificate ({check.error})"
        if check.served_serial is None
        else f"serves serial {check.served_serial}, stored is {check.stored_serial}"
        + (f" ({check.error})" if check.error else "")
    )
    return ReloadVerifyFailed(
        f"{check.name}: {check.endpoint} {what} after {timeout:g} s",
        "the new certificate is stored but not served; check the proxy's config points at "
        f"live/{check.name}/ and its reloader ran, then run `certman verify {check.name}`",
    )


def verify_all(
    deployments: Sequence[Deployment], endpoints: Sequence[Endpoint], *, timeout: float = DEFAULT_TIMEOUT
) -> tuple[ServedCheck, ...]:
    """``verify_served`` for each deployment of a batch against the same endpoints."""
    return tuple(check for deployment in deployments for check in verify_served(deployment, endpoints, timeout=timeout))
