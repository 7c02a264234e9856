"""The Keystore contract's locks over PostgreSQL: session advisory locks, one connection each.

A lock is held by a connection of its own, so it is exclusive between threads of one
process as well as between processes and hosts (advisory locks are re-entrant within
a session, which the contract does not want). ``lock_timeout`` bounds the wait on the
server; a holder that dies drops its connection, and the server releases the lock.
Certificate locks use ``hashtext(name)``: two names that collide only wait for each
other, which is safe.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import KeystoreLocked
from .connection import connect, psycopg_module, store_errors
from .schema import CERT_LOCK_CLASS, KEYSTORE_LOCK, RENEWAL_LOCK, STORE_LOCK_CLASS


@contextmanager
def hold(conninfo: str, key: tuple[int, int | str], *, timeout: float, what: str) -> Iterator[None]:
    """Hold the advisory lock ``key`` (class, number or text to hash) for the block; wait at most
    ``timeout`` seconds, then ``KeystoreLocked`` (exit 3) saying ``what`` was held."""
    psycopg = psycopg_module()
    connection = connect(conninfo)
    try:
        with store_errors(conninfo, f"locking {what}"):
            connection.execute("SELECT set_config('lock_timeout', %s, false)", (f"{max(1, int(timeout * 1000))}ms",))
            sql = "SELECT pg_advisory_lock(%s, hashtext(%s))" if isinstance(key[1], str) else None
            try:
                connection.execute(sql or "SELECT pg_advisory_lock(%s, %s)", key)
            except psycopg.errors.LockNotAvailable:
                raise KeystoreLocked(
                    f"{what} is locked by another certman run (waited {timeout:g} s)",
                    "wait for the other run (on this or another host of the fleet) to finish, then try again",
                ) from None
        yield
    finally:
        # Closing the session releases the lock, also when the server is gone already.
        connection.close()


def cert_key(name: str) -> tuple[int, str]:
    return CERT_LOCK_CLASS, name


KEYSTORE = (STORE_LOCK_CLASS, KEYSTORE_LOCK)
RENEWAL = (STORE_LOCK_CLASS, RENEWAL_LOCK)
