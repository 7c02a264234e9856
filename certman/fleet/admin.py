"""``certman store init``, ``status`` and ``rekey``: the schema, the fleet key, and what is where.

``initialise`` creates or migrates the schema (``schema.migrate``) and binds the store
to a fleet key the first time: it seals a fixed text with the key, so that any host
holding another key fails on that check before it writes anything. Run again with the
same key, it changes nothing. ``rekey`` re-seals every private key under a new fleet key
in one transaction.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from ..errors import KeystoreError
from ..keystore.layout import version_name
from . import schema
from .connection import connect, store_errors
from .conninfo import shown
from .fleet_key import CHECK_CONTEXT, CHECK_PLAINTEXT, FleetKey


@dataclass(frozen=True)
class InitResult:
    """What ``initialise`` did: schema versions before and after, and whether it bound the key."""

    location: str
    schema_before: int
    schema_after: int
    key_bound: bool


def initialise(conninfo: str, key: FleetKey) -> InitResult:
    """Create or migrate the schema, then bind ``key`` to a new store or check it against a bound one.

    ``StoreUnavailable`` (exit 8) if the server cannot be reached; ``KeystoreError`` (exit 3)
    if the store is bound to another fleet key (nothing is written then but missing schema steps).
    """
    connection = connect(conninfo, autocommit=True)
    try:
        with store_errors(conninfo, "initialising the schema"):
            before, after = schema.migrate(connection)
            with connection.transaction(), connection.cursor() as cursor:
                cursor.execute("SELECT key_check FROM fleet WHERE id = 1 FOR UPDATE")
                row = cursor.fetchone()
                if row is None:
                    cursor.execute(
                        "INSERT INTO fleet (id, key_check) VALUES (1, %s)", (key.seal(CHECK_PLAINTEXT, CHECK_CONTEXT),)
                    )
        if row is not None:
            key.check(bytes(row[0]), shown(conninfo))
    finally:
        connection.close()
    return InitResult(shown(conninfo), before, after, row is None)


@dataclass(frozen=True)
class CertStatus:
    """One certificate in the store: its current version, its lease, and what each host installed."""

    name: str
    version: str | None
    fence: int
    lease_holder: str | None
    lease_token: int | None
    lease_expires_at: datetime.datetime | None
    lease_held: bool
    # host_id -> version that host last recorded as installed.
    installs: dict[str, str]


def status(conninfo: str) -> list[CertStatus]:
    """Every live certificate of the store, sorted by name; lease expiry as the server's clock sees it."""
    connection = connect(conninfo)
    try:
        with store_errors(conninfo, "reading the status"), connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.name, c.current_version, c.fence, l.holder, l.token, l.expires_at, "
                "coalesce(l.expires_at > clock_timestamp(), false) "
                "FROM certificates c LEFT JOIN leases l ON l.name = c.name "
                "WHERE c.archived IS NULL ORDER BY c.name"
            )
            rows = cursor.fetchall()
            cursor.execute("SELECT name, host_id, version FROM installs ORDER BY name, host_id")
            installs: dict[str, dict[str, str]] = {}
            for name, host, version in cursor.fetchall():
                installs.setdefault(name, {})[host] = version_name(version)
    finally:
        connection.close()
    return [
        CertStatus(
            name=name,
            version=version_name(version) if version else None,
            fence=fence,
            lease_holder=holder,
            lease_token=token,
            lease_expires_at=expires,
            lease_held=held,
            installs=installs.get(name, {}),
        )
        for name, version, fence, holder, token, expires, held in rows
    ]


# Every sealed column, with the associated data its values were sealed under.
_SEALED = (
    ("accounts", "id", "key_sealed", "'account:' || ca"),
    ("accounts", "id", "pending_key_sealed", "'account-next:' || ca"),
    ("certificates", "id", "pending_key_sealed", "'order:' || name"),
)


def rekey(conninfo: str, old: FleetKey, new: FleetKey) -> int:
    """Seal every private key in the store with ``new`` instead of ``old``, in one transaction;
    the number of values re-sealed. ``KeystoreError`` (nothing changed) if ``old`` is not the
    store's key; a reader meanwhile sees all old or all new."""
    from .store import cert_context

    connection = connect(conninfo, autocommit=True)
    count = 0
    try:
        with store_errors(conninfo, "re-sealing the keys"), connection.transaction(), connection.cursor() as cursor:
            cursor.execute("SELECT key_check FROM fleet WHERE id = 1 FOR UPDATE")
            row = cursor.fetchone()
            if row is None:
                raise KeystoreError(f"fleet store {shown(conninfo)} has no fleet key", "run `certman store init`")
            old.check(bytes(row[0]), shown(conninfo))
            for table, key, column, context in _SEALED:
                cursor.execute(f"SELECT {key}, {column}, {context} FROM {table} WHERE {column} IS NOT NULL FOR UPDATE")
                for ident, sealed, where in cursor.fetchall():
                    plain = old.open(bytes(sealed), where, f"{table} {where}")
                    cursor.execute(
                        f"UPDATE {table} SET {column} = %s WHERE {key} = %s", (new.seal(plain, where), ident)
                    )
                    count += 1
            cursor.execute(
                "SELECT v.certificate, v.version, c.name, v.key_sealed FROM versions v "
                "JOIN certificates c ON c.id = v.certificate FOR UPDATE OF v"
            )
            for certificate, version, name, sealed in cursor.fetchall():
                context = cert_context(name, version)
                plain = old.open(bytes(sealed), context, f"the key of {name} {version_name(version)}")
                cursor.execute(
                    "UPDATE versions SET key_sealed = %s WHERE certificate = %s AND version = %s",
                    (new.seal(plain, context), certificate, version),
                )
                count += 1
            cursor.execute("UPDATE fleet SET key_check = %s WHERE id = 1", (new.seal(CHECK_PLAINTEXT, CHECK_CONTEXT),))
    finally:
        connection.close()
    return count
