"""Caddy: reload its current configuration through the admin API, so it re-reads certificate files.

Caddy is configured with files from ``live/`` (Caddyfile ``tls <fullchain> <privkey>``,
or ``tls.certificates.load_files`` in JSON). It reads them only when a configuration
is loaded, and it ignores a ``POST /load`` of an unchanged configuration, so
certman fetches the running configuration and posts it back with
``Cache-Control: must-revalidate``, the request ``caddy reload --force`` makes.

    [[reloader]]
    name = "caddy"
    admin = "localhost:2019"     # Caddy's admin listener (host:port)
    verify = ["127.0.0.1:443"]
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ...errors import ConfigError, ReloadError
from ...plugins.settings import Seconds, setting
from ..served import VerifySettings, reloader_settings
from . import Deployment
from .programs import last_words

log = logging.getLogger(__name__)

DEFAULT_ADMIN = "localhost:2019"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class CaddySettings:
    admin: str = setting(
        help="Caddy's admin listener, host:port (an http:// prefix is dropped).", default=DEFAULT_ADMIN
    )
    timeout: Seconds = setting(help="Seconds each admin API request may take.", default=DEFAULT_TIMEOUT)


class CaddyReloader:
    """Posts Caddy's running configuration back to its admin API, so it re-reads the files."""

    settings_classes: ClassVar[tuple[type, ...]] = (CaddySettings, VerifySettings)

    def __init__(self, settings: CaddySettings) -> None:
        admin = settings.admin.removeprefix("http://").rstrip("/")
        if ":" not in admin or "/" in admin:
            raise ConfigError(
                f"caddy reloader: admin must be host:port, not {admin!r}",
                'use the address of Caddy\'s admin listener, e.g. admin = "localhost:2019"',
            )
        self.settings = replace(settings, admin=admin)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> CaddyReloader:
        """The reloader a ``[[reloader]]`` table describes; a bad option is a ConfigError naming it."""
        return cls(reloader_settings(CaddySettings, options, plugin="caddy reloader"))

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> bytes:
        connection = http.client.HTTPConnection(self.settings.admin, timeout=self.settings.timeout)
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            data = response.read()
        except OSError as exc:
            raise ReloadError(
                f"cannot reach Caddy's admin API at {self.settings.admin}: {exc.strerror or exc}",
                "check that Caddy runs and that the reloader's admin option matches its admin listener",
            ) from exc
        finally:
            connection.close()
        if response.status != 200:
            raise ReloadError(
                f"Caddy's admin API refused {method} {path} ({response.status})",
                last_words(data.decode(errors="replace")),
            )
        return data

    def reload(self, deployments: Sequence[Deployment]) -> None:
        config = self._request("GET", "/config/")
        if config.strip() in (b"", b"null"):
            raise ReloadError(
                f"Caddy at {self.settings.admin} has no configuration to reload",
                "start Caddy with a config that loads the files under live/",
            )
        self._request("POST", "/load", config, {"Content-Type": "application/json", "Cache-Control": "must-revalidate"})
        log.info("Caddy reloaded for %s", ", ".join(d.name for d in deployments))
