"""Fleet mode from the run-wide settings: ``store``, ``host_id``, ``store_key_file``.

Everything that can be checked here is checked before the first connection: the
psycopg extra, the fleet key file (present, 32 bytes, not readable by others), the
host id. ``store`` comes from certman.toml, ``CERTMAN_STORE`` or ``--store``.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..log import register_secret
from .connection import psycopg_module
from .conninfo import password
from .fleet_key import FleetKey

if TYPE_CHECKING:
    from ..config import Settings
    from .store import PostgresKeystore

_HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


@dataclass(frozen=True)
class FleetSettings:
    """Where the fleet's store is, what this host is called in it, and the key file."""

    conninfo: str
    host_id: str
    key_file: Path | None
    lock_timeout: float


def fleet_settings(settings: Settings) -> FleetSettings:
    """The fleet part of ``settings``; ``ConfigError`` (exit 2) if ``store`` is unset or ``host_id`` unfit."""
    if not settings.store:
        raise ConfigError(
            "no fleet store is configured",
            'set store = "postgresql://certman@db.example.com/certman" in certman.toml, CERTMAN_STORE or --store',
        )
    host_id = settings.host_id or socket.gethostname()
    if not _HOST_ID.fullmatch(host_id):
        raise ConfigError(
            f"host_id = {host_id!r} is not a usable host name",
            "letters, digits, '.', '_' and '-' (set host_id in certman.toml)",
        )
    key_file = Path(settings.store_key_file) if settings.store_key_file else None
    secret = password(settings.store)
    if secret is not None:  # allowed from the environment or a flag, but never in a log line
        register_secret(secret)
    return FleetSettings(settings.store, host_id, key_file, settings.lock_timeout)


def load_key(fleet: FleetSettings) -> FleetKey:
    """The fleet key ``store_key_file`` names; ``ConfigError`` if unset or unsafe."""
    if fleet.key_file is None:
        raise ConfigError(
            "fleet mode needs the fleet key: store_key_file is not set",
            "set store_key_file to the key file every host shares (made by `certman store init --new-key FILE`)",
        )
    return FleetKey.load(fleet.key_file)


def open_store(settings: Settings) -> PostgresKeystore:
    """The fleet store ``settings`` describe; nothing is sent until it is first used."""
    fleet = fleet_settings(settings)
    psycopg_module()
    key = load_key(fleet)
    from .store import PostgresKeystore

    return PostgresKeystore(fleet.conninfo, key, host_id=fleet.host_id, lock_timeout=fleet.lock_timeout)
