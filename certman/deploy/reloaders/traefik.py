"""Traefik: keep its file-provider dynamic configuration listing the live certificate files.

Traefik's file provider watches its configuration files, not the certificate files
they name (traefik/traefik#5495), and reads those when the configuration changes. So
after every deploy certman rewrites its own dynamic file, atomically by rename(2) so
that Traefik never parses a half-written one:

    [[tls.certificates]]
    certFile = "<keystore>/live/<name>/fullchain.pem"
    keyFile = "<keystore>/live/<name>/privkey.pem"

Entries for certificates outside the batch are kept, so one file can serve many.

    [[reloader]]
    name = "traefik"
    path = "/etc/traefik/dynamic/certman.toml"   # inside Traefik's providers.file.directory
    verify = ["127.0.0.1:443"]
"""

from __future__ import annotations

import fcntl
import logging
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ...errors import ConfigError, KeystoreError, ReloadError
from ...keystore.files import write_file
from ...plugins.settings import setting
from ..served import VerifySettings, reloader_settings
from . import Deployment

log = logging.getLogger(__name__)

FILE_MODE = 0o644
HEADER = "# Written by certman after each deploy; Traefik reloads it when it changes. Do not edit.\n"


@dataclass(frozen=True)
class TraefikSettings:
    path: Path = setting(
        help="The dynamic configuration file certman writes (.toml), in Traefik's providers.file directory."
    )


class TraefikReloader:
    """Rewrites a Traefik file-provider configuration that lists the live certificate files."""

    settings_classes: ClassVar[tuple[type, ...]] = (TraefikSettings, VerifySettings)

    def __init__(self, settings: TraefikSettings) -> None:
        if settings.path.suffix != ".toml":
            raise ConfigError(f"traefik reloader: {settings.path} must end in .toml", "certman writes TOML")
        self.settings = settings

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TraefikReloader:
        """The reloader a ``[[reloader]]`` table describes; a bad option is a ConfigError naming it."""
        return cls(reloader_settings(TraefikSettings, options, plugin="traefik reloader"))

    def reload(self, deployments: Sequence[Deployment]) -> None:
        try:
            dir_fd = os.open(self.settings.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise ReloadError(
                f"cannot open Traefik's dynamic configuration directory {self.settings.path.parent}: {exc.strerror}",
                "create it, or fix the traefik reloader's path",
            ) from exc
        try:
            # Two certman runs deploying at once must not drop each other's entries;
            # the lock is on the directory so no lock file appears where Traefik looks.
            fcntl.flock(dir_fd, fcntl.LOCK_EX)
            entries = merged_entries(self._read_entries(), deployments)
            write_file(self.settings.path, render(entries, deployments), FILE_MODE)
        except KeystoreError as exc:
            raise ReloadError(exc.message, exc.hint) from exc
        finally:
            os.close(dir_fd)
        log.info("wrote %s for %s", self.settings.path, ", ".join(d.name for d in deployments))

    def _read_entries(self) -> list[dict[str, Any]]:
        try:
            data = tomllib.loads(self.settings.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ReloadError(
                f"cannot read {self.settings.path}: {exc}", "certman owns this file; remove it and deploy again"
            ) from exc
        certificates = data.get("tls", {}).get("certificates", [])
        return [dict(c) for c in certificates if isinstance(c, dict)]


def merged_entries(existing: list[dict[str, Any]], deployments: Sequence[Deployment]) -> list[dict[str, Any]]:
    """``existing`` with each deployment's entry added, or updated in place (matched by certFile)."""
    entries = list(existing)
    for deployment in deployments:
        entry = {"certFile": str(deployment.live.fullchain), "keyFile": str(deployment.live.privkey)}
        index = next((i for i, e in enumerate(entries) if e.get("certFile") == entry["certFile"]), None)
        if index is None:
            entries.append(entry)
        else:
            entries[index] = {**entries[index], **entry}
    return entries


def render(entries: list[dict[str, Any]], deployments: Sequence[Deployment]) -> bytes:
    import tomli_w

    # The serials make each deploy a visible change, for Traefik's watcher and for people.
    serials = "".join(f"# {d.name}: serial {d.serial}\n" for d in deployments)
    return (HEADER + serials + tomli_w.dumps({"tls": {"certificates": entries}})).encode()
