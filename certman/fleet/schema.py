"""The store's schema, as numbered migrations that ``certman store init`` applies in order.

Each step runs in one transaction with the step's number recorded in
``certman_schema``, under a transaction advisory lock: concurrent inits on several
hosts apply each step once, and running init again is a no-op. A store whose schema
is newer than this certman knows is refused rather than misread.

Rows that hold key material hold it sealed with the fleet key (``fleet_key``).
A removed certificate or replaced account is archived (``archived`` set), never
deleted; the live one of a name is the row whose ``archived`` is NULL.
"""

from __future__ import annotations

from typing import Any

from ..errors import KeystoreError

# The (class, key) pairs of the advisory locks certman takes: per certificate
# (CERT_LOCK_CLASS, hashtext(name)), and store-wide ones in their own class.
CERT_LOCK_CLASS = 0x6365_7274  # "cert"
STORE_LOCK_CLASS = 0x7374_6F72  # "stor"
KEYSTORE_LOCK, RENEWAL_LOCK, MIGRATION_LOCK = 1, 2, 3

MIGRATIONS: tuple[str, ...] = (
    # 1: the fleet protocol's tables (docs/fleet.md, "What the store holds").
    """
    CREATE TABLE fleet (
        id integer PRIMARY KEY CHECK (id = 1),
        key_check bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
    );
    CREATE TABLE accounts (
        id bigserial PRIMARY KEY,
        ca text NOT NULL,
        record jsonb NOT NULL,
        key_sealed bytea NOT NULL,
        pending_key_sealed bytea,
        archived text,
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (ca, archived)
    );
    CREATE UNIQUE INDEX accounts_live ON accounts (ca) WHERE archived IS NULL;
    CREATE TABLE certificates (
        id bigserial PRIMARY KEY,
        name text NOT NULL,
        spec jsonb,
        current_version integer NOT NULL DEFAULT 0,
        fence bigint NOT NULL DEFAULT 0,
        entry jsonb,
        state jsonb,
        revocation jsonb,
        pending_order jsonb,
        pending_key_sealed bytea,
        archived text,
        UNIQUE (name, archived)
    );
    CREATE UNIQUE INDEX certificates_live ON certificates (name) WHERE archived IS NULL;
    CREATE TABLE versions (
        certificate bigint NOT NULL REFERENCES certificates (id),
        version integer NOT NULL CHECK (version > 0),
        meta jsonb NOT NULL,
        leaf bytea NOT NULL,
        chain bytea NOT NULL,
        key_sealed bytea NOT NULL,
        committed_by text NOT NULL,
        token bigint,
        committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (certificate, version)
    );
    CREATE TABLE leases (
        name text PRIMARY KEY,
        holder text NOT NULL,
        token bigint NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE TABLE installs (
        name text NOT NULL,
        host_id text NOT NULL,
        version integer NOT NULL,
        installed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (name, host_id)
    );
    CREATE TABLE challenges (
        token text PRIMARY KEY,
        key_authorization text NOT NULL,
        name text NOT NULL,
        holder text NOT NULL,
        expires_at timestamptz NOT NULL
    );
    """,
    # 2: HTTP-01 in a fleet (fleet/challenges.py). Step 1's challenges table was never
    # written; it now keys each token's answer by the identifier it proves, and its
    # expiry (server clock) is indexed so stale answers are swept cheaply.
    """
    ALTER TABLE challenges RENAME COLUMN name TO identifier;
    CREATE INDEX challenges_expiry ON challenges (expires_at);
    """,
)
LATEST = len(MIGRATIONS)


def applied_version(cursor: Any) -> int:
    """The schema version of the store (0: never initialised)."""
    cursor.execute("SELECT to_regclass('certman_schema') IS NOT NULL")
    if not cursor.fetchone()[0]:
        return 0
    cursor.execute("SELECT coalesce(max(version), 0) FROM certman_schema")
    return int(cursor.fetchone()[0])


def migrate(connection: Any) -> tuple[int, int]:
    """Apply every missing step; (version before, version after). Idempotent and safe to race."""
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", (STORE_LOCK_CLASS, MIGRATION_LOCK))
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS certman_schema ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        before = applied_version(cursor)
        check_known(before, "")
        for number in range(before + 1, LATEST + 1):
            cursor.execute(MIGRATIONS[number - 1])
            cursor.execute("INSERT INTO certman_schema (version) VALUES (%s)", (number,))
    return before, LATEST


def check_known(version: int, location: str) -> None:
    """``KeystoreError`` if the store's schema is newer than this certman (a newer host migrated it)."""
    if version > LATEST:
        raise KeystoreError(
            f"fleet store {location or ''} has schema version {version}; this certman knows up to {LATEST}",
            "upgrade certman on this host to the version the other hosts run",
        )
