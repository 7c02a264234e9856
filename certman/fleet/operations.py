"""``revoke``, ``remove`` and ``reconfigure`` on a fleet host: each under the certificate's
lease (docs/fleet.md).

An operator's change to one certificate must not race a renewal of it on another
host: revoking a serial while another host commits its successor, or archiving a
certificate another host is about to commit a version of. So each takes the
certificate's lease without waiting (``KeystoreLocked`` if another host holds it),
keeps it while it works, and then changes the store and this host's keystore:

- ``revoke``: first pulls the store's current version (the serial the fleet serves),
  revokes it at the CA with the fleet's account, and records the revocation in the
  store as well as here; every other host copies it on its next ``sync``/``renew``
  and its renewal then leaves the certificate alone, as a lone host's does.
- ``remove``: archives the certificate in the store and here (nothing is deleted);
  every other host that had installed it archives its own copy on its next run.
- account operations (``certman account ...``: register, rollover, update,
  deactivate) run under the lease of the CA's account (``account_lease``), on the
  store's account, the one every host uses: ``account_operation``.
- ``reconfigure``: records the new settings here and the shared ones (``SHARED``: what
  identifies the certificate at the CA) in the store; whichever host renews next
  takes them from the store (``sync.adopt_shared_spec``). Reloaders and solver paths stay
  each host's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ..config import Settings
from ..errors import KeystoreError, KeystoreLocked
from ..keystore import FileKeystore, ca_id
from ..keystore.times import Clock, archive_stamp, utc_now
from ..lifecycle import RemoveResult, RevokeResult
from .protocol import DEFAULT_LEASE_TTL, FleetProtocol, LeaseKeeper
from .renew import FleetHostKeystore
from .store import PostgresKeystore
from .sync import adopt_shared_spec, sync

if TYPE_CHECKING:
    from ..declaration.change import SpecChange
    from ..declaration.reconfigure import ReconfigureResult


T = TypeVar("T")


def account_lease(directory_url: str) -> str:
    """The name of the lease on the fleet's account at the CA ``directory_url``."""
    return f"_account.{ca_id(directory_url)}"[:128]


def account_operation(
    local: FileKeystore,
    store: PostgresKeystore,
    directory_url: str,
    work: Callable[[FileKeystore], T],
    *,
    lease_ttl: float = DEFAULT_LEASE_TTL,
    changes: bool = True,
) -> T:
    """``work`` (a ``certman.ca.accounts`` operation, given the keystore to use) on the fleet's
    account at ``directory_url``, under that account's lease (only if it ``changes`` the
    account: ``show`` takes none): the account and its key are read from and written to
    the store, where every host finds them.

    Raises what ``work`` raises, ``KeystoreLocked`` while another host holds the account's
    lease, ``StoreUnavailable`` (exit 8) if the store is down.
    """
    store.check()
    fleets = FleetHostKeystore(local, FleetProtocol(store), {})
    if not changes:
        return work(fleets)
    with leased(store, account_lease(directory_url), lease_ttl):
        return work(fleets)


@contextmanager
def leased(store: PostgresKeystore, name: str, ttl: float = DEFAULT_LEASE_TTL) -> Iterator[LeaseKeeper]:
    """Hold the lease on ``name`` (kept every ``ttl``/3 seconds) while the block works.

    ``KeystoreLocked`` (exit 3) if another host holds it: it is renewing ``name`` now, or
    working on the account.
    """
    protocol = FleetProtocol(store)
    lease = protocol.try_lease(name, ttl)
    if lease is None:
        raise KeystoreLocked(
            f"another fleet host holds the lease on {name}: it is working on it now",
            "run again in a few minutes (`certman store status` shows the holder and until when)",
        )
    try:
        with protocol.keeping(lease) as keeper:
            yield keeper
    finally:
        protocol.release(lease)


def revoke(
    local: FileKeystore,
    store: PostgresKeystore,
    settings: Settings,
    name: str,
    *,
    reason: str = "unspecified",
    timeout: float = 90.0,
    clock: Clock = utc_now,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> RevokeResult:
    """``certman.lifecycle.revoke`` for the fleet's current version of ``name``, under its lease.

    Raises what ``lifecycle.revoke`` raises (``UsageError``, ``ACMEError``), ``KeystoreLocked``
    while another host holds the lease, ``StoreUnavailable`` (exit 8) if the store is down.
    """
    from .. import lifecycle

    store.check()
    protocol = FleetProtocol(store)
    with leased(store, name, lease_ttl) as keeper:
        if name in store.read_index():
            failed = [r for r in sync(local, store, settings, names=[name]) if not r.ok]
            if failed:
                raise KeystoreError(f"{name}: {failed[0].error}", failed[0].hint)
        result = lifecycle.revoke(
            FleetHostKeystore(local, protocol, {}), name, reason=reason, timeout=timeout, clock=clock
        )
        marker = local.read_revocation(name)
        keeper.check()
        if marker is not None and store.has(name):
            store.mark_revoked(name, marker)
    return result


def remove(
    local: FileKeystore,
    store: PostgresKeystore,
    name: str,
    *,
    clock: Clock = utc_now,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> RemoveResult:
    """``certman.lifecycle.remove`` in the store and here, under the lease on ``name``.

    ``UsageError`` if neither has ``name``; ``KeystoreLocked`` while another host holds
    the lease; ``StoreUnavailable`` (exit 8) if the store is down.
    """
    from .. import lifecycle

    store.check()
    with leased(store, name, lease_ttl) as keeper:
        keeper.check()
        where: Path | str = ""
        if store.has(name) or not local.has(name):
            where = store.archive_cert(name, archive_stamp(clock()))
        if local.has(name):
            return lifecycle.remove(local, name, clock=clock)
    return RemoveResult(name, where)


def reconfigure(
    local: FileKeystore,
    store: PostgresKeystore,
    settings: Settings,
    name: str,
    change: SpecChange,
    *,
    config_file: Path | str | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> ReconfigureResult:
    """``certman.declaration.reconfigure.reconfigure`` under the lease on ``name``: recorded
    here, and in the store for every host. Never orders a certificate.

    Raises what ``reconfigure`` raises, ``KeystoreLocked`` while another host holds the
    lease, ``StoreUnavailable`` (exit 8) if the store is down.
    """
    from ..declaration.reconfigure import plan_reconfigure, write_reconfiguration

    store.check()
    with leased(store, name, lease_ttl) as keeper:
        if name in store.read_index():
            failed = [r for r in sync(local, store, settings, names=[name]) if not r.ok]
            if failed:
                raise KeystoreError(f"{name}: {failed[0].error}", failed[0].hint)
            adopt_shared_spec(local, store, name)
        plan = plan_reconfigure(local, name, change, settings=settings, config_file=config_file)
        keeper.check()
        result = write_reconfiguration(local, plan)
        if store.has(name) and plan.diff.changes:
            store.write_spec(plan.after)
    return result
