"""``PostgresKeystore``: the ``Keystore`` contract over a fleet's PostgreSQL database.

Every write is one transaction (atomic and, once committed, durable). Private keys
are sealed with the fleet key before they are sent (``fleet_key``); the database never
sees one in clear. Locks are advisory locks (``locks``). The fleet protocol on top
(leases, the fenced commit, what each host installed) is ``protocol.FleetProtocol``.

One connection per store object carries the reads and writes, shared by threads
under a mutex; it is opened on first use, checked (schema version, fleet key) and
opened again after it is lost. A store that cannot be reached is ``StoreUnavailable``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from msgspec import structs

from ..config import CertSpec
from ..errors import KeystoreError, UsageError
from ..keystore.contract import Keystore, StoredVersion
from ..keystore.layout import version_name
from ..keystore.pending import PendingOrder
from ..keystore.records import AccountRecord, IndexEntry, RevocationMarker, VersionMeta
from ..keystore.state_records import RenewalState
from ..names import check_cert_name
from . import locks, schema
from .connection import connect, psycopg_module, store_errors
from .conninfo import shown
from .fleet_key import FleetKey

LIVE = "archived IS NULL"


def json_value(value: Any) -> Any:
    """``value`` as a jsonb parameter."""
    from psycopg.types.json import Jsonb  # deferred: psycopg is the fleet extra's

    return Jsonb(value)


def cert_context(name: str, version: int) -> str:
    """The associated data a certificate key is sealed under: its name and version."""
    return f"cert:{name}:{version_name(version)}"


def _no_certificate(name: str, location: str) -> UsageError:
    return UsageError(f"no certificate named {name!r} in {location}", "see `certman list` for the names")


class PostgresKeystore:
    """A fleet store: ``conninfo`` a libpq connection string, ``host_id`` this host in commits, ``lock_timeout`` s."""

    def __init__(self, conninfo: str, key: FleetKey, *, host_id: str, lock_timeout: float = 30.0) -> None:
        psycopg_module()
        self.conninfo = conninfo
        self.key = key
        self.host_id = host_id
        self.lock_timeout = lock_timeout
        self._mutex = threading.RLock()
        self._connection: Any = None

    @property
    def location(self) -> str:
        return shown(self.conninfo)

    def check(self) -> None:
        """Connect now and check the schema version and the fleet key (``transaction`` does on first use)."""
        with self.transaction("checking the store"):
            pass

    def close(self) -> None:
        with self._mutex:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    @contextmanager
    def transaction(self, action: str) -> Iterator[Any]:
        """A cursor in one transaction, committed when the block ends, rolled back if it raises."""
        with self._mutex, store_errors(self.conninfo, action):
            connection = self._connection
            if connection is None or connection.closed or connection.broken:
                connection = self._connection = connect(self.conninfo)
                try:
                    self._check(connection)
                except BaseException:
                    self.close()
                    raise
            with connection.transaction(), connection.cursor() as cursor:
                yield cursor

    def _check(self, connection: Any) -> None:
        with connection.cursor() as cursor:
            version = schema.applied_version(cursor)
            if version < schema.LATEST:
                raise KeystoreError(
                    f"fleet store {self.location} has schema version {version}, this certman needs {schema.LATEST}",
                    "run `certman store init` once (from any host) to create or migrate the schema",
                )
            schema.check_known(version, self.location)
            cursor.execute("SELECT key_check FROM fleet WHERE id = 1")
            row = cursor.fetchone()
        if row is None:
            raise KeystoreError(
                f"fleet store {self.location} has no fleet key", "run `certman store init --new-key FILE`"
            )
        self.key.check(bytes(row[0]), self.location)

    # -- locks ---------------------------------------------------------------------------

    def lock_cert(self, name: str) -> AbstractContextManager[None]:
        check_cert_name(name)
        return locks.hold(self.conninfo, locks.cert_key(name), timeout=self.lock_timeout, what=f"certificate {name}")

    def lock_keystore(self) -> AbstractContextManager[None]:
        return locks.hold(self.conninfo, locks.KEYSTORE, timeout=self.lock_timeout, what="the fleet store")

    def lock_renewal(self) -> AbstractContextManager[None]:
        return locks.hold(self.conninfo, locks.RENEWAL, timeout=self.lock_timeout, what="certman renew")

    # -- accounts ------------------------------------------------------------------------

    def load_account(self, ca: str) -> tuple[bytes, AccountRecord] | None:
        with self.transaction(f"reading the account at {ca}") as cursor:
            cursor.execute(f"SELECT record, key_sealed FROM accounts WHERE ca = %s AND {LIVE}", (ca,))
            row = cursor.fetchone()
        if row is None:
            return None
        where = f"the account at {ca}"
        key_pem = self.key.open(bytes(row[1]), f"account:{ca}", where)
        return key_pem, AccountRecord.from_json(row[0], f"{self.location} accounts[{ca}]")

    def save_account(self, ca: str, key_pem: bytes, record: AccountRecord) -> None:
        sealed = self.key.seal(key_pem, f"account:{ca}")
        with self.transaction(f"saving the account at {ca}") as cursor:
            cursor.execute(
                "INSERT INTO accounts (ca, record, key_sealed) VALUES (%s, %s, %s) "
                f"ON CONFLICT (ca) WHERE {LIVE} DO UPDATE SET record = excluded.record, "
                "key_sealed = excluded.key_sealed, updated_at = clock_timestamp()",
                (ca, json_value(record.to_json()), sealed),
            )

    def account_cas(self) -> list[str]:
        with self.transaction("listing accounts") as cursor:
            cursor.execute(f"SELECT ca FROM accounts WHERE {LIVE} ORDER BY ca")
            return [row[0] for row in cursor.fetchall()]

    def save_pending_account_key(self, ca: str, key_pem: bytes | None) -> None:
        sealed = None if key_pem is None else self.key.seal(key_pem, f"account-next:{ca}")
        with self.transaction(f"saving the next key of the account at {ca}") as cursor:
            cursor.execute(f"UPDATE accounts SET pending_key_sealed = %s WHERE ca = %s AND {LIVE}", (sealed, ca))
            if cursor.rowcount == 0 and sealed is not None:
                raise KeystoreError(f"fleet store {self.location} has no account at {ca} to roll over")

    def load_pending_account_key(self, ca: str) -> bytes | None:
        with self.transaction(f"reading the next key of the account at {ca}") as cursor:
            cursor.execute(f"SELECT pending_key_sealed FROM accounts WHERE ca = %s AND {LIVE}", (ca,))
            row = cursor.fetchone()
        if row is None or row[0] is None:
            return None
        return self.key.open(bytes(row[0]), f"account-next:{ca}", f"the next key of the account at {ca}")

    def archive_account(self, ca: str, stamp: str) -> str:
        where = f"{self.location} accounts[{ca}@{stamp}]"
        with self.transaction(f"archiving the account at {ca}") as cursor:
            cursor.execute("SELECT 1 FROM accounts WHERE ca = %s AND archived = %s", (ca, stamp))
            if cursor.fetchone() is not None:
                raise KeystoreError(f"an archived account {where} exists already")
            cursor.execute(f"UPDATE accounts SET archived = %s WHERE ca = %s AND {LIVE}", (stamp, ca))
            if cursor.rowcount == 0:
                raise KeystoreError(f"fleet store {self.location} has no account at {ca} to archive")
        return where

    # -- certificates --------------------------------------------------------------------

    def read_index(self) -> dict[str, IndexEntry]:
        with self.transaction("reading the index") as cursor:
            cursor.execute(f"SELECT name, entry FROM certificates WHERE {LIVE} AND current_version > 0")
            rows = cursor.fetchall()
        where = f"{self.location} certificates"
        return {name: IndexEntry.from_json(entry, where, name) for name, entry in rows}

    def names(self) -> list[str]:
        return sorted(self.read_index())

    def has(self, name: str) -> bool:
        return self.live_version(name) is not None

    def _column(self, name: str, column: str, action: str) -> tuple[Any, ...] | None:
        check_cert_name(name)
        with self.transaction(f"{action} of {name}") as cursor:
            cursor.execute(f"SELECT {column} FROM certificates WHERE name = %s AND {LIVE}", (name,))
            row: tuple[Any, ...] | None = cursor.fetchone()
        return row

    def read_spec(self, name: str) -> CertSpec:
        row = self._column(name, "spec", "reading the spec")
        if row is None or row[0] is None:
            raise _no_certificate(name, self.location)
        return CertSpec.from_dict(row[0], f"{self.location} certificates[{name}].spec")

    def write_spec(self, spec: CertSpec) -> None:
        with self.transaction(f"writing the spec of {spec.name}") as cursor:
            self._row(cursor, spec.name)
            window = "jsonb_set(entry, '{renew_before_days}', %s)"  # reconfigure changes it without a version
            cursor.execute(
                f"UPDATE certificates SET spec = %s, entry = {window} WHERE name = %s AND {LIVE}",
                (json_value(spec.storable().to_dict()), json_value(spec.renew_before_days), spec.name),
            )

    @staticmethod
    def _row(cursor: Any, name: str) -> tuple[int, int]:
        """Lock the live row of ``name`` (made if missing) for this transaction: (id, current version)."""
        check_cert_name(name)
        cursor.execute(
            f"INSERT INTO certificates (name) VALUES (%s) ON CONFLICT (name) WHERE {LIVE} DO NOTHING", (name,)
        )
        cursor.execute(f"SELECT id, current_version FROM certificates WHERE name = %s AND {LIVE} FOR UPDATE", (name,))
        row = cursor.fetchone()
        return int(row[0]), int(row[1])

    def read_state(self, name: str) -> RenewalState:
        return self.read_states([name])[name]

    def read_states(self, names: list[str]) -> dict[str, RenewalState]:
        for name in names:
            check_cert_name(name)
        with self.transaction("reading renewal states") as cursor:
            cursor.execute(f"SELECT name, state FROM certificates WHERE name = ANY(%s) AND {LIVE}", (list(names),))
            stored = dict(cursor.fetchall())
        return {
            name: RenewalState.from_json(stored[name], f"{self.location} certificates[{name}].state")
            if stored.get(name)
            else RenewalState()
            for name in names
        }

    def write_state(self, name: str, state: RenewalState) -> None:
        with self.transaction(f"writing the renewal state of {name}") as cursor:
            self._row(cursor, name)
            cursor.execute(
                f"UPDATE certificates SET state = %s WHERE name = %s AND {LIVE}", (json_value(state.to_json()), name)
            )

    def mark_states(self, states: Mapping[str, RenewalState]) -> None:
        from ..keystore.index import listing_marks

        where = f"{self.location} certificates"
        with self.transaction("marking renewal states in the index") as cursor:
            cursor.execute(
                f"SELECT name, entry FROM certificates WHERE name = ANY(%s) AND {LIVE} AND current_version > 0",
                (list(states),),
            )
            for name, raw in cursor.fetchall():
                entry = IndexEntry.from_json(raw, where, name)
                marked = structs.replace(entry, **listing_marks(states[name], entry))
                if marked != entry:
                    cursor.execute(
                        f"UPDATE certificates SET entry = %s WHERE name = %s AND {LIVE}",
                        (json_value(marked.to_json()), name),
                    )

    def read_pending_order(self, name: str) -> PendingOrder | None:
        row = self._column(name, "pending_order, pending_key_sealed", "reading the pending order")
        if row is None or row[0] is None or row[1] is None:
            return None
        key_pem = self.key.open(bytes(row[1]), f"order:{name}", f"the pending order key of {name}")
        try:
            return PendingOrder.from_json(row[0], key_pem)
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreError(f"pending order of {name} in {self.location} is malformed ({exc})") from None

    def write_pending_order(self, name: str, order: PendingOrder) -> None:
        sealed = self.key.seal(order.key_pem, f"order:{name}")
        with self.transaction(f"writing the pending order of {name}") as cursor:
            self._row(cursor, name)
            cursor.execute(
                f"UPDATE certificates SET pending_order = %s, pending_key_sealed = %s WHERE name = %s AND {LIVE}",
                (json_value(order.to_json()), sealed, name),
            )

    def clear_pending_order(self, name: str) -> None:
        check_cert_name(name)
        with self.transaction(f"clearing the pending order of {name}") as cursor:
            cursor.execute(
                f"UPDATE certificates SET pending_order = NULL, pending_key_sealed = NULL WHERE name = %s AND {LIVE}",
                (name,),
            )

    def read_revocation(self, name: str, live_serial: str | None = None) -> RevocationMarker | None:
        row = self._column(name, "revocation, entry->>'serial'", "reading the revocation marker")
        if row is None or row[0] is None:
            return None
        marker = RevocationMarker.from_json(row[0], f"{self.location} certificates[{name}].revocation")
        serial = live_serial if live_serial is not None else row[1]
        return marker if marker.serial == serial else None

    def mark_revoked(self, name: str, marker: RevocationMarker) -> None:
        with self.transaction(f"marking {name} revoked") as cursor:
            self._row(cursor, name)
            cursor.execute(f"SELECT entry FROM certificates WHERE name = %s AND {LIVE}", (name,))
            raw = cursor.fetchone()[0]
            entry = None
            if raw is not None:
                current = IndexEntry.from_json(raw, f"{self.location} certificates", name)
                entry = json_value(structs.replace(current, revoked_serial=marker.serial).to_json())
            cursor.execute(
                f"UPDATE certificates SET revocation = %s, entry = coalesce(%s, entry) WHERE name = %s AND {LIVE}",
                (json_value(marker.to_json()), entry, name),
            )

    def versions(self, name: str) -> list[str]:
        check_cert_name(name)
        with self.transaction(f"listing the versions of {name}") as cursor:
            cursor.execute(
                "SELECT v.version FROM versions v JOIN certificates c ON c.id = v.certificate "
                f"WHERE c.name = %s AND c.{LIVE} ORDER BY v.version",
                (name,),
            )
            return [version_name(row[0]) for row in cursor.fetchall()]

    def live_version(self, name: str) -> str | None:
        row = self._column(name, "current_version", "reading the live version")
        return version_name(row[0]) if row is not None and row[0] > 0 else None

    def read_meta(self, name: str, version: str) -> VersionMeta | None:
        check_cert_name(name)
        with self.transaction(f"reading the meta of {name} {version}") as cursor:
            cursor.execute(
                "SELECT v.meta FROM versions v JOIN certificates c ON c.id = v.certificate "
                f"WHERE c.name = %s AND c.{LIVE} AND v.version = %s",
                (name, int(version)),
            )
            row = cursor.fetchone()
        return None if row is None else VersionMeta.from_json(row[0], f"{self.location} {name} {version}")

    def store_version(
        self, spec: CertSpec, key_pem: bytes, leaf_pem: bytes, chain_pem: bytes, meta: VersionMeta
    ) -> StoredVersion:
        """Store a new version and make it current, in one transaction (no lease: see
        ``FleetProtocol.commit`` for the fenced commit of a fleet renewal)."""
        with self.transaction(f"storing a version of {spec.name}") as cursor:
            certificate, current = self._row(cursor, spec.name)
            number = current + 1
            meta, entry = version_records(spec, meta, number)
            cursor.execute(
                "INSERT INTO versions (certificate, version, meta, leaf, chain, key_sealed, committed_by) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (certificate, number, json_value(meta.to_json()), leaf_pem, chain_pem,
                 self.key.seal(key_pem, cert_context(spec.name, number)), self.host_id),
            )  # fmt: skip
            cursor.execute(
                "UPDATE certificates SET current_version = %s, spec = %s, entry = %s WHERE id = %s",
                (number, json_value(spec.storable().to_dict()), json_value(entry.to_json()), certificate),
            )
        return StoredVersion(spec.name, version_name(number), meta)

    def read_version(self, name: str, version: str) -> tuple[bytes, bytes, bytes, VersionMeta] | None:
        """(key PEM, leaf PEM, chain PEM, meta) of one stored version, or None; the key is opened here."""
        check_cert_name(name)
        with self.transaction(f"reading {name} {version}") as cursor:
            cursor.execute(
                "SELECT v.key_sealed, v.leaf, v.chain, v.meta FROM versions v JOIN certificates c "
                f"ON c.id = v.certificate WHERE c.name = %s AND c.{LIVE} AND v.version = %s",
                (name, int(version)),
            )
            row = cursor.fetchone()
        if row is None:
            return None
        key_pem = self.key.open(bytes(row[0]), cert_context(name, int(version)), f"the key of {name} {version}")
        return key_pem, bytes(row[1]), bytes(row[2]), VersionMeta.from_json(row[3], f"{self.location} {name}")

    def archive_cert(self, name: str, stamp: str) -> str:
        check_cert_name(name)
        where = f"{self.location} certificates[{name}@{stamp}]"
        with self.transaction(f"archiving {name}") as cursor:
            cursor.execute("SELECT 1 FROM certificates WHERE name = %s AND archived = %s", (name, stamp))
            if cursor.fetchone() is not None:
                raise KeystoreError(f"an archived certificate {where} exists already")
            cursor.execute(f"UPDATE certificates SET archived = %s WHERE name = %s AND {LIVE}", (stamp, name))
            if cursor.rowcount == 0:
                raise _no_certificate(name, self.location)
        return where


def version_records(spec: CertSpec, meta: VersionMeta, number: int) -> tuple[VersionMeta, IndexEntry]:
    """The meta of version ``number`` of ``spec`` and the index entry it makes."""
    from ..keystore import index

    meta = structs.replace(meta, version=version_name(number))
    entry = index.entry_for(meta, tuple(i.value for i in spec.identifiers), spec.key_type, spec.server)
    return meta, entry


# The interface guard: mypy checks here that PostgresKeystore keeps the contract.
_: type[Keystore] = PostgresKeystore
