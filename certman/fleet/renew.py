"""``certman renew`` on a fleet host: pull, lease what is due, renew, commit fenced, reload.

Per run (docs/fleet.md, "The protocol in plain words"):

1. ``sync``: install every newer version of the store here (verified, reloaded).
2. Plan as a lone host would: fetch the ARI windows whose check time passed (RFC
   9773, as ``renew`` does), then ``renew --check`` on the local keystore, which now
   holds the store's versions: which certificates are due.
3. For each due one, take its lease without waiting. No lease: another host renews
   it, and this host pulls its version on a later run. With the lease, re-read the
   manifest: if it moved since the pull, pull instead. With ``--force``, a version
   this host did not have when the run started, committed in the last
   ``FORCE_WINDOW``, counts as the renewal: three hosts forced at once place one
   order (force means "renew now", not "once per host").
4. Renew the leased certificates with the ordinary renewal job over
   ``FleetHostKeystore``: its ``store_version`` first commits to the store, fenced by
   the lease (kept alive every TTL/3), and installs locally only if that commit won.
   A lost commit is a failure of this certificate; nothing of it is installed. A CA's
   409 ``alreadyReplaced`` (RFC 9773 §5) means another host renewed: if the store has
   its version, never a second order without ``replaces``; if not, that host's
   replacement was fenced out and discarded, and this host orders without ``replaces``.
5. Release the leases. After a 409, pull the other host's version instead.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from msgspec import structs

from ..config import CertSpec, Settings
from ..errors import KeystoreError
from ..keystore import FileKeystore
from ..keystore.contract import StoredVersion
from ..keystore.records import AccountRecord, VersionMeta
from ..keystore.times import Clock, utc_now
from ..renewal.declared import declared_specs
from ..renewal.job import RenewReport, refresh_windows, renew
from ..renewal.report import CertResult
from .challenges import StoreTokenBoard
from .protocol import DEFAULT_LEASE_TTL, FleetProtocol, Lease, LeaseKeeper
from .store import PostgresKeystore
from .sync import SyncResult, adopt_shared_spec, sync

# Seconds: how recent another host's version must be for `renew --force` to take it as this renewal.
FORCE_WINDOW = 300.0


class CommitLost(KeystoreError):
    """The fenced commit lost: another host committed first, or our lease ran out."""


@dataclass
class LeasedWork:
    """A certificate this host renews in this run: its lease and the version it replaces."""

    lease: Lease
    expected: int
    keeper: LeaseKeeper | None = None


class FleetHostKeystore(FileKeystore):
    """A fleet host's local keystore during a renew: a new version is committed to the store
    first (fenced by the lease in ``work``) and installed here only if that commit won.
    Accounts are the store's (one per CA for the fleet), saved and archived in both. HTTP-01 answers
    are published in the store (``challenges``) for every host's challenge server."""

    def __init__(self, local: FileKeystore, protocol: FleetProtocol, work: dict[str, LeasedWork]) -> None:
        super().__init__(local.root, lock_timeout=local.lock_timeout)
        self.protocol = protocol
        self.work = work
        # The CA may ask any host for an HTTP-01 answer: publish it where all of them look.
        self.token_board = StoreTokenBoard(protocol.store)
        # Names the CA said another host replaced, with that host's version in the store.
        self.replaced: set[str] = set()

    def store_version(
        self, spec: CertSpec, key_pem: bytes, leaf_pem: bytes, chain_pem: bytes, meta: VersionMeta
    ) -> StoredVersion:
        work = self.work.get(spec.name)
        if work is None:
            raise CommitLost(f"{spec.name}: renewed without the fleet lease; not stored", "report this as a bug")
        if work.keeper is not None:
            work.keeper.check()
        committed = self.protocol.commit(work.lease, work.expected, spec, key_pem, leaf_pem, chain_pem, meta)
        if committed is None:
            raise CommitLost(
                f"{spec.name}: the fleet store refused this host's commit (token {work.lease.token}): "
                "another host committed first or the lease ran out; this certificate is discarded",
                "nothing was installed; the next run pulls the version the store has",
            )
        stored = super().store_version(spec, key_pem, leaf_pem, chain_pem, meta)
        self.protocol.record_install(spec.name, committed.version)
        return stored

    def committed_elsewhere(self, name: str) -> bool:
        """Whether the store's manifest of ``name`` moved past the version this run replaces
        (checked after the CA's 409 ``alreadyReplaced``)."""
        work = self.work.get(name)
        manifest = self.protocol.manifest(name)
        moved = work is not None and manifest is not None and manifest.version > work.expected
        if moved:
            self.replaced.add(name)
        return moved

    def load_account(self, ca: str) -> tuple[bytes, AccountRecord] | None:
        return self.protocol.store.load_account(ca) or super().load_account(ca)

    def save_account(self, ca: str, key_pem: bytes, record: AccountRecord) -> None:
        super().save_account(ca, key_pem, record)
        self.protocol.store.save_account(ca, key_pem, record)

    def save_pending_account_key(self, ca: str, key_pem: bytes | None) -> None:
        if super().load_account(ca) is not None:
            super().save_pending_account_key(ca, key_pem)
        self.protocol.store.save_pending_account_key(ca, key_pem)

    def load_pending_account_key(self, ca: str) -> bytes | None:
        return self.protocol.store.load_pending_account_key(ca) or super().load_pending_account_key(ca)

    def archive_account(self, ca: str, stamp: str) -> Path | str:
        """Archived in the store (where every host finds the fleet's account) and here, where each is."""
        where: Path | str = ""
        if self.protocol.store.load_account(ca) is not None:
            where = self.protocol.store.archive_account(ca, stamp)
        if super().load_account(ca) is not None:
            where = super().archive_account(ca, stamp)
        return where


@dataclass(frozen=True)
class FleetRenewReport:
    """What the run pulled, and the renewal report of every selected certificate."""

    pulled: list[SyncResult]
    report: RenewReport

    @property
    def exit_code(self) -> int:
        return 7 if self.report.exit_code or any(not r.ok for r in self.pulled) else 0


def fleet_renew(
    local: FileKeystore,
    store: PostgresKeystore,
    settings: Settings,
    *,
    names: Iterable[str] = (),
    force: bool = False,
    jobs: int = 4,
    clock: Clock = utc_now,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> FleetRenewReport:
    """The fleet protocol's renew for ``names`` (default: every certificate here or in the store).

    ``StoreUnavailable`` (exit 8) if the store cannot be reached before anything was
    pulled; ``lease_ttl`` is in seconds. Per-certificate failures are in the report.
    """
    protocol = FleetProtocol(store)
    store.check()
    started = protocol.server_now() - datetime.timedelta(seconds=FORCE_WINDOW)
    had = protocol.installed()
    selected = list(dict.fromkeys(names))
    in_store = set(store.read_index())
    pulled = sync(local, store, settings, names=[n for n in selected if n in in_store])
    # Through the fleet's keystore view: the account that asks is the store's, shared by the hosts.
    refresh_windows(FleetHostKeystore(local, protocol, {}), settings, names=selected, clock=clock)
    checked = renew(local, settings, names=selected, force=force, check=True, clock=clock)
    work: dict[str, LeasedWork] = {}
    others: dict[str, CertResult] = {}
    replaced: set[str] = set()
    try:
        for result in checked.results:
            if result.action != "due":
                others[result.name] = structs.replace(result, action="skipped")
                continue
            recent = started if force else None
            leased = _lease(protocol, local, settings, result.name, lease_ttl, had.get(result.name), recent)
            if isinstance(leased, LeasedWork):
                work[result.name] = leased
            else:
                others[result.name] = structs.replace(result, action="skipped", reason=leased)
        if work:
            with contextlib.ExitStack() as keepers:
                for item in work.values():
                    item.keeper = keepers.enter_context(protocol.keeping(item.lease))
                hosted = FleetHostKeystore(local, protocol, work)
                done = renew(hosted, settings, names=list(work), force=force, jobs=jobs, clock=clock)
                replaced = hosted.replaced
        else:
            done = RenewReport((), checked.checked_at)
    finally:
        for item in work.values():
            protocol.release(item.lease)
    results = {r.name: r for r in done.results} | others
    for name in replaced:
        results[name], caught_up = _pulled_instead(protocol, local, settings, results[name], work[name].expected)
        pulled += caught_up
    ordered = tuple(results[r.name] for r in checked.results)
    return FleetRenewReport(pulled, replace(done, results=ordered, checked_at=checked.checked_at))


def _pulled_instead(
    protocol: FleetProtocol, local: FileKeystore, settings: Settings, failed: CertResult, expected: int
) -> tuple[CertResult, list[SyncResult]]:
    """A renewal the CA refused with 409 ``alreadyReplaced`` while the store had another
    host's newer version: that version is pulled here instead."""
    manifest = protocol.manifest(failed.name)
    if manifest is None or manifest.version <= expected:
        return failed, []
    caught_up = sync(local, protocol.store, settings, names=[failed.name])
    if not all(r.ok for r in caught_up):
        return failed, caught_up
    reason = f"another host renewed it meanwhile; its version {manifest.version:06d} is installed here instead"
    return structs.replace(failed, action="skipped", reason=reason, error=None, hint=None), caught_up


def _lease(
    protocol: FleetProtocol,
    local: FileKeystore,
    settings: Settings,
    name: str,
    ttl: float,
    had: str | None,
    recent: datetime.datetime | None,
) -> LeasedWork | str:
    """The lease on ``name`` and the version to replace, or why this host leaves it to another."""
    store = protocol.store
    if protocol.manifest(name) is None:
        # Not in the store yet (declared, or issued here before the fleet): its first
        # version is committed like any other.
        declared = declared_specs(settings)
        store.write_spec(declared[name] if name in declared else local.read_spec(name))
    lease = protocol.try_lease(name, ttl)
    if lease is None:
        return "another host holds the fleet lease: it renews, and this host pulls its version on a later run"
    manifest = protocol.manifest(name)
    assert manifest is not None  # the row exists: made above or found
    installed = protocol.installed().get(name)
    moved = manifest.version > (int(installed) if installed else 0)
    fresh = recent is not None and had != installed and protocol.committed_since(name, recent)
    if moved or fresh:
        protocol.release(lease)
        return f"another host committed version {manifest.version:06d} meanwhile; it is pulled on the next run"
    if name not in declared_specs(settings):
        # Another host may have reconfigured it (``certman reconfigure``): renew with the fleet's settings.
        adopt_shared_spec(local, store, name)
    return LeasedWork(lease, manifest.version)
