"""nginx: test the configuration with ``nginx -t``, then reload it; nginx's own words become the hint.

nginx reads ``ssl_certificate`` files when its master process (re)loads the
configuration, so a reload is both necessary and sufficient: old workers finish
their connections while new workers accept with the new certificate.

    [[reloader]]
    name = "nginx"
    binary = "/usr/sbin/nginx"            # default: nginx on PATH
    config = "/etc/nginx/nginx.conf"      # -c; default: nginx's own
    prefix = "/etc/nginx"                 # -p; default: nginx's own
    command = ["systemctl", "reload", "nginx"]   # default: nginx -s reload
    verify = ["127.0.0.1:443"]
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import ConfigError, ReloadError
from ...plugins.options import number_option
from . import Deployment
from .programs import DEFAULT_TIMEOUT, argv_option, last_words, run_program

log = logging.getLogger(__name__)

OPTIONS = {"name", "binary", "config", "prefix", "command", "timeout", "verify"}


@dataclass(frozen=True)
class NginxReloader:
    binary: str = "nginx"
    config: str | None = None
    prefix: str | None = None
    command: tuple[str, ...] | None = None
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> NginxReloader:
        unknown = set(options) - OPTIONS
        if unknown:
            raise ConfigError(
                f"nginx reloader: unknown option {', '.join(sorted(unknown))}",
                f"known options: {', '.join(sorted(OPTIONS - {'name'}))}",
            )
        return cls(
            binary=str(options.get("binary", "nginx")),
            config=_optional_str(options, "config"),
            prefix=_optional_str(options, "prefix"),
            command=argv_option(dict(options), "command", "nginx"),
            timeout=number_option(
                options, "timeout", DEFAULT_TIMEOUT, float, "nginx reloader", positive=True, error=ConfigError
            ),
        )

    def _base_argv(self) -> list[str]:
        argv = [self.binary]
        if self.prefix:
            argv += ["-p", self.prefix]
        if self.config:
            argv += ["-c", self.config]
        return argv

    def test_config(self) -> None:
        """``nginx -t``: refuse to reload a configuration nginx itself rejects."""
        result = run_program([*self._base_argv(), "-t"], timeout=self.timeout)
        if result.returncode != 0:
            raise ReloadError(
                "nginx rejected its configuration (nginx -t failed); it still serves the previous certificate",
                last_words(result.output),
            )

    def reload(self, deployments: Sequence[Deployment]) -> None:
        self.test_config()
        argv = self.command or (*self._base_argv(), "-s", "reload")
        result = run_program(argv, timeout=self.timeout)
        if result.returncode != 0:
            raise ReloadError(
                f"nginx reload failed: {' '.join(argv)} exited with {result.returncode}", last_words(result.output)
            )
        log.info("nginx reloaded for %s", ", ".join(d.name for d in deployments))


def _optional_str(options: Mapping[str, Any], key: str) -> str | None:
    value = options.get(key)
    return None if value is None else str(value)
