"""The fleet protocol's store side: manifests, leases with fencing tokens, the fenced commit.

Per certificate (docs/fleet.md, "The protocol"):

- the **manifest** is the certificate row's ``current_version`` and ``fence`` (the token
  of the lease that committed it);
- a **lease** is taken without waiting by one statement that inserts it, or takes it
  over only once it has expired; expiry is judged by the server's clock alone
  (``clock_timestamp()``), and the token grows by one on every take-over, never reset;
- the **commit** is one statement: the manifest advances only if the expected version
  is still current, this lease is still held with this token, and the token is not
  older than the manifest's fence. A commit that loses changes nothing.

The lease is an efficiency device: correctness comes from the fenced commit. The ACME
order itself cannot be fenced (the CA knows nothing of our tokens), so a holder paused
past its lease may still place one order; its commit is then refused, and nothing it
got is installed anywhere.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..config import CertSpec
from ..errors import CertmanError, KeystoreError
from ..keystore.contract import StoredVersion
from ..keystore.layout import version_name
from ..keystore.records import VersionMeta
from ..names import check_cert_name
from .store import PostgresKeystore, cert_context, json_value, version_records

# Seconds. Longer than the slowest ACME step (DNS propagation can take minutes);
# renewed every third of it while the holder works.
DEFAULT_LEASE_TTL = 600.0


@dataclass(frozen=True)
class Manifest:
    """What every host installs: the current version (0: none yet) and the fence that committed it."""

    name: str
    version: int
    fence: int


@dataclass(frozen=True)
class Lease:
    """A lease this host holds: ``token`` fences its commit; ``ttl`` in seconds."""

    name: str
    holder: str
    token: int
    ttl: float


class LeaseLost(KeystoreError):
    """The lease expired or was taken over while we worked: the work is abandoned before commit."""


class FleetProtocol:
    """Leases and fenced commits on ``store``, as host ``store.host_id``."""

    def __init__(self, store: PostgresKeystore) -> None:
        self.store = store

    def manifest(self, name: str) -> Manifest | None:
        """The manifest of ``name``, or None if the store has no such certificate."""
        check_cert_name(name)
        with self.store.transaction(f"reading the manifest of {name}") as cursor:
            cursor.execute(
                "SELECT current_version, fence FROM certificates WHERE name = %s AND archived IS NULL", (name,)
            )
            row = cursor.fetchone()
        return None if row is None else Manifest(name, int(row[0]), int(row[1]))

    def try_lease(self, name: str, ttl: float = DEFAULT_LEASE_TTL) -> Lease | None:
        """Take the lease on ``name`` for ``ttl`` seconds without waiting; None if another holds it."""
        check_cert_name(name)
        holder = self.store.host_id
        with self.store.transaction(f"taking the lease on {name}") as cursor:
            cursor.execute(
                "INSERT INTO leases AS l (name, holder, token, expires_at) "
                "VALUES (%(name)s, %(holder)s, 1, clock_timestamp() + make_interval(secs => %(ttl)s)) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, token = l.token + 1, "
                "expires_at = excluded.expires_at WHERE l.expires_at <= clock_timestamp() "
                "RETURNING token",
                {"name": name, "holder": holder, "ttl": ttl},
            )
            row = cursor.fetchone()
        return None if row is None else Lease(name, holder, int(row[0]), ttl)

    def renew_lease(self, lease: Lease) -> bool:
        """Extend ``lease`` by its ttl from now (server clock); False if it expired or was taken over."""
        with self.store.transaction(f"renewing the lease on {lease.name}") as cursor:
            cursor.execute(
                "UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => %s) "
                "WHERE name = %s AND holder = %s AND token = %s AND expires_at > clock_timestamp()",
                (lease.ttl, lease.name, lease.holder, lease.token),
            )
            return bool(cursor.rowcount == 1)

    def release(self, lease: Lease) -> None:
        """Let the lease go now (if still ours); the token stays, so the next one is higher."""
        with self.store.transaction(f"releasing the lease on {lease.name}") as cursor:
            cursor.execute(
                "UPDATE leases SET expires_at = clock_timestamp() WHERE name = %s AND holder = %s AND token = %s",
                (lease.name, lease.holder, lease.token),
            )

    def commit(
        self,
        lease: Lease,
        expected: int,
        spec: CertSpec,
        key_pem: bytes,
        leaf_pem: bytes,
        chain_pem: bytes,
        meta: VersionMeta,
    ) -> StoredVersion | None:
        """Store version ``expected + 1`` of ``spec.name`` and make it current, fenced by ``lease``.

        One statement: None (and nothing written) unless ``expected`` is still current, the
        lease is still held with its token, and the token is not below the manifest's fence.
        """
        number = expected + 1
        meta, entry = version_records(spec, meta, number)
        params = {
            "name": spec.name,
            "holder": lease.holder,
            "token": lease.token,
            "expected": expected,
            "entry": json_value(entry.to_json()),
            "spec": json_value(spec.storable().to_dict()),
            "meta": json_value(meta.to_json()),
            "leaf": leaf_pem,
            "chain": chain_pem,
            "key": self.store.key.seal(key_pem, cert_context(spec.name, number)),
        }
        with self.store.transaction(f"committing {spec.name} {version_name(number)}") as cursor:
            cursor.execute(
                "WITH advanced AS ("
                " UPDATE certificates c SET current_version = c.current_version + 1, fence = %(token)s,"
                " entry = %(entry)s, spec = %(spec)s"
                " WHERE c.name = %(name)s AND c.archived IS NULL AND c.current_version = %(expected)s"
                " AND c.fence <= %(token)s AND EXISTS (SELECT 1 FROM leases l WHERE l.name = %(name)s"
                " AND l.holder = %(holder)s AND l.token = %(token)s AND l.expires_at > clock_timestamp())"
                " RETURNING c.id, c.current_version) "
                "INSERT INTO versions (certificate, version, meta, leaf, chain, key_sealed, committed_by, token) "
                "SELECT id, current_version, %(meta)s, %(leaf)s, %(chain)s, %(key)s, %(holder)s, %(token)s "
                "FROM advanced RETURNING version",
                params,
            )
            row = cursor.fetchone()
        return None if row is None else StoredVersion(spec.name, version_name(number), meta)

    def record_install(self, name: str, version: str) -> None:
        """Note that this host now serves ``version`` of ``name`` (shown by ``certman store status``)."""
        with self.store.transaction(f"recording the install of {name} {version}") as cursor:
            cursor.execute(
                "INSERT INTO installs (name, host_id, version) VALUES (%s, %s, %s) ON CONFLICT (name, host_id) "
                "DO UPDATE SET version = excluded.version, installed_at = clock_timestamp()",
                (name, self.store.host_id, int(version)),
            )

    def forget_install(self, name: str) -> None:
        """Drop this host's install record of ``name`` (the store removed it, and so did this host)."""
        with self.store.transaction(f"forgetting the install of {name}") as cursor:
            cursor.execute("DELETE FROM installs WHERE name = %s AND host_id = %s", (name, self.store.host_id))

    def server_now(self) -> datetime.datetime:
        """The store server's clock: the only clock leases and commits are judged by."""
        with self.store.transaction("reading the server clock") as cursor:
            cursor.execute("SELECT clock_timestamp()")
            now: datetime.datetime = cursor.fetchone()[0]
            return now

    def committed_since(self, name: str, since: datetime.datetime) -> bool:
        """Whether the current version of ``name`` was committed at or after ``since`` (server clock)."""
        with self.store.transaction(f"reading when {name} was committed") as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM certificates c JOIN versions v ON v.certificate = c.id "
                "AND v.version = c.current_version WHERE c.name = %s AND c.archived IS NULL AND v.committed_at >= %s)",
                (name, since),
            )
            return bool(cursor.fetchone()[0])

    def installed(self) -> dict[str, str]:
        """Per certificate name, the version this host last recorded as installed."""
        with self.store.transaction("reading what this host installed") as cursor:
            cursor.execute("SELECT name, version FROM installs WHERE host_id = %s", (self.store.host_id,))
            return {name: version_name(version) for name, version in cursor.fetchall()}

    @contextmanager
    def keeping(self, lease: Lease) -> Iterator[LeaseKeeper]:
        """Renew ``lease`` every ttl/3 in a thread while the block works; ``LeaseKeeper.check``
        raises ``LeaseLost`` once a renewal failed, so the caller abandons before its commit."""
        keeper = LeaseKeeper(self, lease)
        keeper.start()
        try:
            yield keeper
        finally:
            keeper.stop()


class LeaseKeeper:
    """The thread behind ``FleetProtocol.keeping``."""

    def __init__(self, protocol: FleetProtocol, lease: Lease) -> None:
        self.protocol = protocol
        self.lease = lease
        self.lost = threading.Event()
        # Why a renewal of the lease failed, when the store (not another host) was the cause.
        self.store_error: CertmanError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"certman-lease-{lease.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def check(self) -> None:
        """``LeaseLost`` if a renewal failed (expired, taken over, or the store unreachable)."""
        if not self.lost.is_set():
            return
        where = f"the lease on {self.lease.name} (token {self.lease.token})"
        if self.store_error is not None:
            raise LeaseLost(
                f"{where} could not be kept: {self.store_error.message}",
                "nothing was installed and the local certificate is still served; "
                "the next run renews once the store is back and the lease has expired",
            )
        raise LeaseLost(
            f"{where} was lost while renewing it",
            "another host may have taken over; its version is pulled on the next run",
        )

    def _run(self) -> None:
        while not self._stop.wait(self.lease.ttl / 3):
            try:
                renewed = self.protocol.renew_lease(self.lease)
            except CertmanError as exc:
                self.store_error = exc
                renewed = False
            if not renewed:
                self.lost.set()
                return
