"""HAProxy: hand the new certificate to the running process over its runtime API, no restart.

``set ssl cert <path>`` with the combined PEM (key and chain) opens a transaction
and ``commit ssl cert <path>`` swaps it in for new handshakes; open connections are
untouched. HAProxy knows each certificate by the path its configuration loaded it
from, so that path must be ``live/<name>/combined.pem``. When the socket is missing
or a certificate is not loaded there, the configured ``command`` (a reload) runs
instead, so a restarted HAProxy reads the new files itself.

    [[reloader]]
    name = "haproxy"
    socket = "/run/haproxy/admin.sock"   # or "127.0.0.1:9999"; needs "level admin"
    command = ["systemctl", "reload", "haproxy"]   # fallback; none by default
    config = "/etc/haproxy/haproxy.cfg"  # what a dry run checks with haproxy -c; none by default
    verify = ["127.0.0.1:443"]

A dry run (``test_config``) checks the configuration with ``haproxy -c -f <config>``
when ``config`` is set, and asks the runtime API what it has loaded (read-only).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ...errors import ReloadError, ReloadPartlyFailed
from ...plugins.settings import Argv, FilePath, Program, Seconds, setting
from ..served import VerifySettings, reloader_settings
from . import Deployment
from .programs import DEFAULT_TIMEOUT, last_words, run_program

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/run/haproxy/admin.sock"


class SocketUnavailable(Exception):
    """The runtime API cannot be reached; a reload may still help."""


@dataclass(frozen=True)
class RuntimeAPI:
    """One HAProxy runtime API socket: a unix path, or host:port for a TCP socket."""

    address: str
    timeout: float = 10.0

    def _connect(self) -> socket.socket:
        try:
            if self.address.startswith("/"):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.address)
                return sock
            host, _, port = self.address.rpartition(":")
            return socket.create_connection((host.strip("[]"), int(port)), timeout=self.timeout)
        except OSError as exc:
            raise SocketUnavailable(f"{self.address}: {exc.strerror or exc}") from exc

    def command(self, line: str, payload: str | None = None) -> str:
        """Send one command (with a ``<<`` payload, HAProxy ≥ 2.2) and return HAProxy's answer."""
        data = line + (f" <<\n{payload.rstrip()}\n\n" if payload is not None else "\n")
        with self._connect() as sock:
            try:
                sock.sendall(data.encode())
                sock.shutdown(socket.SHUT_WR)
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except OSError as exc:
                raise ReloadError(
                    f"HAProxy runtime API {self.address} failed during {line.split(' <<')[0]!r}: {exc.strerror or exc}"
                ) from exc
        return b"".join(chunks).decode(errors="replace").strip()

    def loaded_certs(self) -> set[str]:
        """The certificate paths HAProxy loaded (``show ssl cert``)."""
        answer = self.command("show ssl cert")
        return {line.strip() for line in answer.splitlines() if line.strip() and not line.startswith("#")}


@dataclass(frozen=True)
class HAProxySettings:
    socket: str = setting(
        help='Runtime API socket: a unix path or host:port; needs "level admin".', default=DEFAULT_SOCKET
    )
    command: Argv | None = setting(
        help="Fallback reload command as an argv list, run when the socket is unavailable or a "
        "certificate is not loaded from live/<name>/combined.pem; default: none.",
        default=None,
    )
    timeout: Seconds = setting(
        help="Seconds the runtime API and the fallback command may take.", default=DEFAULT_TIMEOUT
    )
    config: FilePath | None = setting(
        help="Configuration file a dry run checks with haproxy -c -f; default: none (the socket only).", default=None
    )
    binary: Program | None = setting(
        help="The haproxy program for that check; default: haproxy on PATH or in /usr/sbin, /sbin.", default=None
    )


class HAProxyReloader:
    """Swaps certificates in through HAProxy's runtime API; reloads only as a fallback."""

    settings_classes: ClassVar[tuple[type, ...]] = (HAProxySettings, VerifySettings)

    def __init__(self, settings: HAProxySettings) -> None:
        self.settings = settings

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> HAProxyReloader:
        """The reloader a ``[[reloader]]`` table describes; a bad option is a ConfigError naming it."""
        return cls(reloader_settings(HAProxySettings, options, plugin="haproxy reloader"))

    def test_config(self) -> None:
        """``haproxy -c`` (when ``config`` is set) and a read-only ``show ssl cert``: what a reload
        would meet, without changing what HAProxy serves. ReloadError as ``reload`` would raise."""
        if self.settings.config:
            argv = [self.settings.binary or "haproxy", "-c", "-f", self.settings.config]
            result = run_program(argv, timeout=self.settings.timeout)
            if result.returncode != 0:
                raise ReloadError(
                    "HAProxy rejected its configuration (haproxy -c failed); it still serves the previous certificate",
                    last_words(result.output),
                )
        try:
            RuntimeAPI(self.settings.socket, timeout=self.settings.timeout).loaded_certs()
        except SocketUnavailable as exc:
            if self.settings.command is None:
                self._fall_back(f"the runtime API socket is unavailable ({exc})")

    def reload(self, deployments: Sequence[Deployment]) -> None:
        """Swap each certificate in; raise ``ReloadPartlyFailed`` naming only those HAProxy
        did not take, so a certificate it updated is never reported as failed."""
        api = RuntimeAPI(self.settings.socket, timeout=self.settings.timeout)
        try:
            loaded = api.loaded_certs()
        except SocketUnavailable as exc:
            self._fall_back(f"the runtime API socket is unavailable ({exc})")
            return
        missing = [d.name for d in deployments if str(d.live.combined) not in loaded]
        failed: dict[str, ReloadError] = {}
        for deployment in deployments:
            if deployment.name not in missing:
                try:
                    self._update(api, str(deployment.live.combined), deployment)
                except ReloadError as exc:
                    failed[deployment.name] = exc
        if missing:
            try:
                self._fall_back(f"HAProxy has not loaded {', '.join(f'live/{n}/combined.pem' for n in missing)}")
            except ReloadError as exc:
                failed.update(dict.fromkeys(missing, exc))
        if failed:
            raise ReloadPartlyFailed(failed)

    def _update(self, api: RuntimeAPI, path: str, deployment: Deployment) -> None:
        try:
            pem = deployment.live.combined.read_text()
        except OSError as exc:
            raise ReloadError(f"cannot read {deployment.live.combined}: {exc.strerror}") from exc
        answer = api.command(f"set ssl cert {path}", pem)
        if "Transaction created" not in answer and "Transaction updated" not in answer:
            api.command(f"abort ssl cert {path}")
            raise ReloadError(
                f"HAProxy refused the new certificate for {deployment.name} (set ssl cert)", last_words(answer)
            )
        answer = api.command(f"commit ssl cert {path}")
        if "Success!" not in answer:
            api.command(f"abort ssl cert {path}")
            raise ReloadError(f"HAProxy could not commit the new certificate for {deployment.name}", last_words(answer))
        log.info("HAProxy now serves %s serial %s from %s", deployment.name, deployment.serial, path)

    def _fall_back(self, reason: str) -> None:
        command = self.settings.command
        if command is None:
            raise ReloadError(
                f"cannot update HAProxy in place: {reason}",
                "point its bind line at live/<name>/combined.pem and set the reloader's socket, "
                'or set command = ["systemctl", "reload", "haproxy"] as a fallback',
            )
        log.info("HAProxy: %s; running %s", reason, " ".join(command))
        result = run_program(command, timeout=self.settings.timeout)
        if result.returncode != 0:
            raise ReloadError(
                f"HAProxy reload failed: {' '.join(command)} exited with {result.returncode}",
                last_words(result.output),
            )
