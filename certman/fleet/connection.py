"""Connections to the fleet store, and the one place psycopg errors become certman errors.

psycopg 3 is the optional extra ``certman[postgres]``; without it, a configured
``store`` fails with a ``ConfigError`` that names the extra. A connection that cannot
be made or is lost is ``StoreUnavailable`` (exit 8); any other database error is a
``KeystoreError`` (exit 3). Messages name the store without its password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, KeystoreError, StoreUnavailable
from .conninfo import shown

if TYPE_CHECKING:
    import psycopg

# Seconds: a store that does not answer a connection attempt is down for this run.
CONNECT_TIMEOUT = 10
EXTRA_HINT = "install it with: pip install 'certman[postgres]' (psycopg 3), in certman's own environment"


def psycopg_module() -> Any:
    """The ``psycopg`` package, or ``ConfigError`` naming the ``certman[postgres]`` extra."""
    try:
        import psycopg
    except ImportError:
        raise ConfigError("the store setting needs the PostgreSQL extra, certman[postgres]", EXTRA_HINT) from None
    return psycopg


def connect(conninfo: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A new connection; ``StoreUnavailable`` (exit 8) if the server cannot be reached or refuses us."""
    module = psycopg_module()
    with store_errors(conninfo, "connecting"):
        connection: psycopg.Connection[Any] = module.connect(
            conninfo, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT, application_name="certman"
        )
    return connection


@contextmanager
def store_errors(conninfo: str, action: str) -> Iterator[None]:
    """Turn a psycopg error raised while ``action`` into a certman error naming the store."""
    psycopg = psycopg_module()
    try:
        yield
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(
            f"fleet store {shown(conninfo)} is unavailable ({action}): {_first_line(exc)}",
            "local certificates are still served; check the database server and the store setting, then run again",
        ) from None
    except psycopg.Error as exc:
        raise KeystoreError(
            f"fleet store {shown(conninfo)}: {action} failed: {_first_line(exc)}",
            "run `certman store init` if the schema is missing or old; see docs/fleet.md",
        ) from None


def _first_line(exc: BaseException) -> str:
    # libpq's messages can span lines (DETAIL, HINT); the first says what happened.
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
