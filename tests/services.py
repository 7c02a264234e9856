"""Start real services (Pebble, pebble-challtestsrv, ...) for tests.

Everything binds to 127.0.0.1 on ports picked at run time: other processes on
shared machines already hold Pebble's default ports (14000, 15000, 5002, 8053).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

READY_TIMEOUT = 10.0
POLL_INTERVAL = 0.03
STOP_TIMEOUT = 5.0
HTTP_TIMEOUT = 5.0
# Short, so one hung probe cannot eat the whole readiness budget.
PROBE_TIMEOUT = 1.0

# Services started and not yet stopped, so conftest can attach their logs to a
# failing test's report.
RUNNING: list[Service] = []


def free_port() -> int:
    """A TCP port that was free a moment ago; the race is acceptable for tests."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_binary(name: str, apt_package: str) -> str:
    """Path of `name` on PATH; a missing tool is a broken setup, never a skip."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"`{name}` not found: install it with `apt-get install {apt_package}`")
    return path


def wait_for(condition: Callable[[], bool], timeout: float = READY_TIMEOUT, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds. Never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} did not hold within {timeout} s")
        time.sleep(POLL_INTERVAL)


def _die_with_parent() -> None:
    # If pytest itself is killed (CI timeout, SIGKILL), the kernel sends
    # SIGTERM to the service instead of leaving it holding ports.
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class ServiceError(RuntimeError):
    pass


@dataclass
class Service:
    """One child process whose stdout and stderr go to `log_path`."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    # Run as this user (e.g. "postgres": initdb and postgres refuse root).
    user: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self, ready: Callable[[], bool], timeout: float = READY_TIMEOUT) -> None:
        """Start the process and poll `ready` until it returns True.

        An exception from `ready` means "not ready yet"; the last one is
        reported if the deadline passes.
        """
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=None if self.env is None else dict(self.env),
                cwd=self.cwd,
                preexec_fn=_die_with_parent,
                user=self.user,
                group=self.user,
            )
        RUNNING.append(self)
        try:
            self._wait_ready(self.process, ready, timeout)
        except BaseException:
            # Includes KeyboardInterrupt: never leave a half-started service.
            self.stop()
            raise

    def _wait_ready(self, process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            if process.poll() is not None:
                raise ServiceError(f"{self.name} exited with {process.returncode} while starting:\n{self.log_text()}")
            try:
                if ready():
                    return
            except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
                last_error = exc
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"{self.name} not ready after {timeout} s (last error: {last_error!r}):\n{self.log_text()}"
                )
            time.sleep(POLL_INTERVAL)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self in RUNNING:
            RUNNING.remove(self)
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def running(service: Service, ready: Callable[[], bool]) -> Iterator[Service]:
    service.start(ready)
    try:
        yield service
    finally:
        service.stop()


def _write_listener_certs(workdir: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a 127.0.0.1/localhost leaf for Pebble's HTTPS listeners.

    Debian's pebble ships no certificate. Returns (ca, cert, key) paths.
    """
    now = datetime.datetime.now(datetime.UTC)
    not_before = now - datetime.timedelta(days=1)
    not_after = now + datetime.timedelta(days=3650)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certman test listener CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        # Python 3.13's default strict verification requires the AKI.
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_path = workdir / "listener-ca.pem"
    cert_path = workdir / "listener-cert.pem"
    key_path = workdir / "listener-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


@dataclass
class Pebble:
    """A running Pebble (and, unless an external DNS server was given, challtestsrv)."""

    directory_url: str
    ca_bundle: Path
    http_port: int
    tls_port: int
    management_url: str
    # The resolver Pebble's VA uses, as host:port.
    dns_server: str
    # None when start_pebble was given an external dns_server.
    challtestsrv_url: str | None
    dns_port: int | None
    services: tuple[Service, ...] = field(repr=False)

    def _management_get(self, path: str) -> requests.Response:
        return requests.get(f"{self.management_url}{path}", verify=str(self.ca_bundle), timeout=HTTP_TIMEOUT)

    def root_pem(self) -> str:
        """Pebble's root; regenerated on every Pebble start."""
        response = self._management_get("/roots/0")
        response.raise_for_status()
        return response.text

    def intermediate_pem(self) -> str:
        response = self._management_get("/intermediates/0")
        response.raise_for_status()
        return response.text

    def cert_status(self, serial_hex: str) -> dict[str, Any] | None:
        """{Certificate, Reason, RevokedAt, Serial, Status}, or None for an unknown serial."""
        response = self._management_get(f"/cert-status-by-serial/{serial_hex}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def challtestsrv(self, endpoint: str, payload: Mapping[str, Any]) -> None:
        """POST to challtestsrv's management API, e.g. ("set-txt", {"host": ..., "value": ...})."""
        if self.challtestsrv_url is None:
            raise RuntimeError("this Pebble uses an external DNS server, not challtestsrv")
        response = requests.post(f"{self.challtestsrv_url}/{endpoint}", json=dict(payload), timeout=HTTP_TIMEOUT)
        response.raise_for_status()

    def log_text(self) -> str:
        return "\n".join(f"===== {s.name} =====\n{s.log_text()}" for s in self.services)


def _challtestsrv_ready(management_url: str, dns_port: int) -> bool:
    # Any HTTP status (there is no "/" route) means the management API is up.
    requests.get(management_url, timeout=PROBE_TIMEOUT)
    dns.query.udp(dns.message.make_query("ready.test.", "A"), "127.0.0.1", port=dns_port, timeout=PROBE_TIMEOUT)
    return True


def _https_ok(url: str, ca_bundle: Path) -> bool:
    response = requests.get(url, verify=str(ca_bundle), timeout=PROBE_TIMEOUT)
    return response.ok


@contextlib.contextmanager
def _run_challtestsrv(
    binary: str, workdir: Path, *, ipv4: str = "127.0.0.1", ipv6: str = ""
) -> Iterator[tuple[Service, str, int]]:
    """challtestsrv as DNS only, answering every A with ``ipv4`` and every AAAA with ``ipv6``
    (empty: no such record); yields (service, management URL, DNS port)."""
    dns_port = free_port()
    management_port = free_port()
    management_url = f"http://127.0.0.1:{management_port}"
    service = Service(
        name="pebble-challtestsrv",
        argv=[
            binary,
            # Tests run their own challenge solvers.
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-dns01",
            f"127.0.0.1:{dns_port}",
            "-management",
            f"127.0.0.1:{management_port}",
            "-defaultIPv4",
            ipv4,
            # With the ::1 default, Pebble dials [::1] first and solvers
            # bound to 127.0.0.1 get "connection refused".
            "-defaultIPv6",
            ipv6,
        ],
        log_path=workdir / "challtestsrv.log",
        cwd=workdir,
    )
    with running(service, lambda: _challtestsrv_ready(management_url, dns_port)):
        yield service, management_url, dns_port


@contextlib.contextmanager
def start_pebble(
    workdir: Path,
    *,
    env: Mapping[str, str] | None = None,
    config_overrides: Mapping[str, Any] | None = None,
    dns_server: str | None = None,
    http_port: int | None = None,
    listen_port: int | None = None,
    dns_addresses: tuple[str, str] = ("127.0.0.1", ""),
) -> Iterator[Pebble]:
    """Run Pebble on loopback until the block exits.

    `http_port`/`tls_port` are where Pebble's VA connects for HTTP-01 and
    TLS-ALPN-01, so a test's solver must listen there. Names resolve through
    challtestsrv (every A query answers 127.0.0.1, AAAA is empty) unless
    `dns_server` ("host:port") is given. `listen_port` (the directory URL's port) and
    `http_port` given again with the same `workdir` start a Pebble at the same URLs that
    knows nothing of the last one: a CA reset. ``dns_addresses`` (IPv4, IPv6) is what
    challtestsrv answers every A and AAAA query with; ("", "::1") makes every name IPv6-only.
    """
    pebble_bin = require_binary("pebble", "pebble")
    workdir.mkdir(parents=True, exist_ok=True)
    ca_bundle, cert, key = _write_listener_certs(workdir)

    listen_port = free_port() if listen_port is None else listen_port
    management_port = free_port()
    http_port = free_port() if http_port is None else http_port
    tls_port = free_port()
    settings: dict[str, Any] = {
        "listenAddress": f"127.0.0.1:{listen_port}",
        "managementListenAddress": f"127.0.0.1:{management_port}",
        "certificate": str(cert),
        "privateKey": str(key),
        "httpPort": http_port,
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
        # Pebble 2.4.0 defaults to 5 years; 90 days is what clients meet in practice.
        "certificateValidityPeriod": 7776000,
    }
    settings.update(config_overrides or {})
    config_path = workdir / "pebble-config.json"
    config_path.write_text(json.dumps({"pebble": settings}, indent=2))

    pebble_env = dict(os.environ)
    # No random 0-5 s sleep before each validation. Nonce rejection stays at
    # Pebble's 5% so the client's badNonce retry is always exercised; authz
    # reuse is off so every order needs a fresh validation.
    pebble_env.update({"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0"})
    pebble_env.update(env or {})

    with contextlib.ExitStack() as stack:
        services: list[Service] = []
        challtestsrv_url: str | None = None
        dns_port: int | None = None
        if dns_server is None:
            challtestsrv, challtestsrv_url, dns_port = stack.enter_context(
                _run_challtestsrv(
                    require_binary("pebble-challtestsrv", "pebble"),
                    workdir,
                    ipv4=dns_addresses[0],
                    ipv6=dns_addresses[1],
                )
            )
            services.append(challtestsrv)
            dns_server = f"127.0.0.1:{dns_port}"

        directory_url = f"https://127.0.0.1:{listen_port}/dir"
        management_url = f"https://127.0.0.1:{management_port}"
        pebble_service = Service(
            name="pebble",
            argv=[pebble_bin, "-config", str(config_path), "-dnsserver", dns_server],
            log_path=workdir / "pebble.log",
            env=pebble_env,
            cwd=workdir,
        )
        stack.enter_context(
            running(
                pebble_service,
                lambda: _https_ok(directory_url, ca_bundle) and _https_ok(f"{management_url}/roots/0", ca_bundle),
            )
        )
        services.append(pebble_service)

        yield Pebble(
            directory_url=directory_url,
            ca_bundle=ca_bundle,
            http_port=http_port,
            tls_port=tls_port,
            management_url=management_url,
            dns_server=dns_server,
            challtestsrv_url=challtestsrv_url,
            dns_port=dns_port,
            services=tuple(services),
        )
