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
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError, ReloadError
from ...plugins.options import number_option
from . import Deployment
from .programs import last_words

log = logging.getLogger(__name__)

OPTIONS = {"name", "admin", "timeout", "verify"}
DEFAULT_ADMIN = "localhost:2019"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class CaddyReloader:
    admin: str = DEFAULT_ADMIN
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> CaddyReloader:
        unknown = set(options) - OPTIONS
        if unknown:
            raise ConfigError(
                f"caddy reloader: unknown option {', '.join(sorted(unknown))}",
                f"known options: {', '.join(sorted(OPTIONS - {'name'}))}",
            )
        admin = str(options.get("admin", DEFAULT_ADMIN)).removeprefix("http://").rstrip("/")
        if ":" not in admin or "/" in admin:
            raise ConfigError(
                f"caddy reloader: admin must be host:port, not {admin!r}",
                'use the address of Caddy\'s admin listener, e.g. admin = "localhost:2019"',
            )
        return cls(
            admin=admin,
            timeout=number_option(
                options, "timeout", DEFAULT_TIMEOUT, float, "caddy reloader", positive=True, error=ConfigError
            ),
        )

    def _request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> bytes:
        connection = http.client.HTTPConnection(self.admin, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            data = response.read()
        except OSError as exc:
            raise ReloadError(
                f"cannot reach Caddy's admin API at {self.admin}: {exc.strerror or exc}",
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
                f"Caddy at {self.admin} has no configuration to reload",
                "start Caddy with a config that loads the files under live/",
            )
        self._request("POST", "/load", config, {"Content-Type": "application/json", "Cache-Control": "must-revalidate"})
        log.info("Caddy reloaded for %s", ", ".join(d.name for d in deployments))
