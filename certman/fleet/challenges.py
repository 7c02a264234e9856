"""HTTP-01 in a fleet: the lease holder publishes each token's answer in the store, and
every host's ``certman challenge-server`` answers from it (docs/fleet.md, "HTTP-01 in a fleet").

The CA may connect to any address of the name (RFC 8555 §8.3), so to any host behind
the load balancer, not only the one that placed the order. In fleet mode the
standalone solver publishes through ``StoreTokenBoard`` instead of binding a port:
one row per token in ``challenges`` (token, key authorization, identifier, holder,
expiry by the server's clock), deleted again when the order's validation is over.
A holder that dies mid-validation leaves rows that stop being served at their expiry
(``TOKEN_TTL`` seconds) and are swept by the next publish.

Key authorizations are public (RFC 8555 §8.1: the CA fetches them in clear), so they
are stored unsealed and the challenge server needs no fleet key.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..errors import CertmanError, KeystoreError
from ..solvers import ChallengeBatch
from . import schema
from .connection import connect, store_errors
from .conninfo import shown
from .store import PostgresKeystore

log = logging.getLogger(__name__)

# Seconds an answer is served at most: longer than a CA takes to validate once asked.
TOKEN_TTL = 600.0


class StoreTokenBoard:
    """The ``TokenBoard`` of a fleet host: answers in ``store``'s challenges table, as ``store.host_id``."""

    def __init__(self, store: PostgresKeystore, ttl: float = TOKEN_TTL) -> None:
        self.store = store
        self.ttl = ttl

    def publish(self, batch: ChallengeBatch) -> None:
        """Every token of ``batch`` answerable by every host for ``ttl`` seconds; expired answers swept.

        ``StoreUnavailable`` (exit 8) if the store cannot be reached, and then nothing is published.
        """
        rows = [(c.token, c.validation, c.identifier.value, self.store.host_id, self.ttl) for c in batch]
        with self.store.transaction("publishing HTTP-01 answers") as cursor:
            cursor.execute("DELETE FROM challenges WHERE expires_at <= clock_timestamp()")
            cursor.executemany(
                "INSERT INTO challenges (token, key_authorization, identifier, holder, expires_at) "
                "VALUES (%s, %s, %s, %s, clock_timestamp() + make_interval(secs => %s)) "
                "ON CONFLICT (token) DO UPDATE SET key_authorization = excluded.key_authorization, "
                "identifier = excluded.identifier, holder = excluded.holder, expires_at = excluded.expires_at",
                rows,
            )

    def withdraw(self, batch: ChallengeBatch) -> None:
        """Delete the tokens of ``batch`` this host published (another host's stay)."""
        with self.store.transaction("withdrawing HTTP-01 answers") as cursor:
            cursor.execute(
                "DELETE FROM challenges WHERE token = ANY(%s) AND holder = %s",
                ([c.token for c in batch], self.store.host_id),
            )


class StoreAnswers:
    """The challenge server's view of the store: ``lookup(token)`` is the key authorization
    of a token in flight, else None. One connection, opened again after it is lost."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._mutex = threading.Lock()
        self._connection: Any = None

    def check(self) -> None:
        """Connect now: ``StoreUnavailable`` (exit 8) if the store is down, ``KeystoreError``
        (exit 3) if its schema has no challenges yet (run ``certman store init``)."""
        with self._mutex:
            self._connected()

    def lookup(self, token: str) -> bytes | None:
        """The answer to ``token``, or None if it is not in flight or the store cannot say now."""
        try:
            with self._mutex:
                connection = self._connected()
                with store_errors(self.conninfo, "reading an HTTP-01 answer"), connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT key_authorization FROM challenges WHERE token = %s AND expires_at > clock_timestamp()",
                        (token,),
                    )
                    row = cursor.fetchone()
        except CertmanError as exc:
            # The CA sees a 404 and the holder's order fails; the server keeps running for the next one.
            log.warning("%s", exc.message)
            self.close()
            return None
        return None if row is None else str(row[0]).encode()

    def close(self) -> None:
        with self._mutex:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _connected(self) -> Any:
        connection = self._connection
        if connection is None or connection.closed or connection.broken:
            connection = connect(self.conninfo)
            try:
                with store_errors(self.conninfo, "checking the schema"), connection.cursor() as cursor:
                    version = schema.applied_version(cursor)
            except BaseException:
                connection.close()
                raise
            if version < schema.LATEST:
                connection.close()
                raise KeystoreError(
                    f"fleet store {shown(self.conninfo)} has schema version {version}, "
                    f"the challenge server needs {schema.LATEST}",
                    "run `certman store init` once (from any host) to migrate the schema",
                )
            schema.check_known(version, shown(self.conninfo))
            self._connection = connection
        return connection
