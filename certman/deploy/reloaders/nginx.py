"""nginx: test the configuration with ``nginx -t``, then reload it; nginx's own words become the hint.

nginx reads ``ssl_certificate`` files when its master process (re)loads the
configuration, so a reload is both necessary and sufficient: old workers finish
their connections while new workers accept with the new certificate.

    [[reloader]]
    name = "nginx"
    binary = "/usr/sbin/nginx"            # default: nginx on PATH, /usr/sbin or /sbin
    config = "/etc/nginx/nginx.conf"      # -c; default: nginx's own
    prefix = "/etc/nginx"                 # -p; default: nginx's own
    command = ["systemctl", "reload", "nginx"]   # default: nginx -s reload
    verify = ["127.0.0.1:443"]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ...errors import ReloadError
from ...plugins.settings import Argv, FilePath, Program, Seconds, setting
from ..served import VerifySettings, reloader_settings
from . import Deployment
from .programs import DEFAULT_TIMEOUT, last_words, run_program

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NginxSettings:
    binary: Program = setting(help="The nginx program; default: nginx on PATH or in /usr/sbin, /sbin.", default="nginx")
    config: FilePath | None = setting(help="Configuration file (nginx -c); default: nginx's own.", default=None)
    prefix: FilePath | None = setting(help="Prefix directory (nginx -p); default: nginx's own.", default=None)
    command: Argv | None = setting(
        help='Reload command as an argv list, e.g. ["systemctl", "reload", "nginx"]; default: nginx -s reload.',
        default=None,
    )
    timeout: Seconds = setting(help="Seconds nginx -t and the reload may take each.", default=DEFAULT_TIMEOUT)


class NginxReloader:
    """Tests the configuration with nginx -t, then reloads nginx."""

    settings_classes: ClassVar[tuple[type, ...]] = (NginxSettings, VerifySettings)

    def __init__(self, settings: NginxSettings) -> None:
        self.settings = settings

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> NginxReloader:
        """The reloader a ``[[reloader]]`` table describes; a bad option is a ConfigError naming it."""
        return cls(reloader_settings(NginxSettings, options, plugin="nginx reloader"))

    def _base_argv(self) -> list[str]:
        argv = [self.settings.binary]
        if self.settings.prefix:
            argv += ["-p", self.settings.prefix]
        if self.settings.config:
            argv += ["-c", self.settings.config]
        return argv

    def test_config(self) -> None:
        """``nginx -t``: refuse to reload a configuration nginx itself rejects."""
        result = run_program([*self._base_argv(), "-t"], timeout=self.settings.timeout)
        if result.returncode != 0:
            raise ReloadError(
                "nginx rejected its configuration (nginx -t failed); it still serves the previous certificate",
                last_words(result.output),
            )

    def reload(self, deployments: Sequence[Deployment]) -> None:
        self.test_config()
        argv = self.settings.command or (*self._base_argv(), "-s", "reload")
        result = run_program(argv, timeout=self.settings.timeout)
        if result.returncode != 0:
            raise ReloadError(
                f"nginx reload failed: {' '.join(argv)} exited with {result.returncode}", last_words(result.output)
            )
        log.info("nginx reloaded for %s", ", ".join(d.name for d in deployments))
