"""``certman sync``: install on this host every newer version the fleet store holds, then reload.

The first step of a fleet renew, and all that a host which must never order does.
The local keystore stays what the proxy reads: a pulled version is verified (its
key matches its leaf, its serial is the one recorded, it has not expired), stored
through the same ``FileKeystore.store_version`` as an issued one (atomic, live link
swapped), recorded in the store as installed by this host, and handed to this
host's reloaders. Reloaders and solvers are this host's: a certificate declared in
certman.toml keeps its declaration, one already stored here keeps its stored spec,
and one new to this host takes the store's spec without the reloaders of whichever
host wrote it.

A version lower than the one this host last installed is never installed (a store
restored from an old backup): the certificate fails, saying so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from cryptography import x509

from ..config import CertSpec, Settings
from ..deploy.batch import deploy, deployment_of
from ..deploy.reloaders import Deployment
from ..errors import CertmanError, KeystoreError, UsageError
from ..keys import load_key, public_keys_match
from ..keystore import FileKeystore
from ..keystore.records import IndexEntry
from ..keystore.times import archive_stamp, utc_now
from ..renewal.declared import declared_specs
from .protocol import FleetProtocol
from .store import PostgresKeystore


@dataclass(frozen=True)
class SyncResult:
    """One certificate: ``installed`` (a newer version), ``current``, ``removed`` (another host
    removed it from the store), or ``failed`` with an error."""

    name: str
    action: str
    version: str | None
    serial: str | None
    error: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def sync(
    local: FileKeystore,
    store: PostgresKeystore,
    settings: Settings,
    *,
    names: Iterable[str] = (),
    deploy_timeout: float = 120.0,
) -> list[SyncResult]:
    """Pull every certificate of ``names`` (default: all in the store) that is newer in the store.

    ``StoreUnavailable`` (exit 8) if the store cannot be reached before anything is
    installed; ``UsageError`` for a name the store lacks; a certificate's own failure
    (verification, an older version, a reload) is in its result, never raised.
    """
    store.check()
    protocol = FleetProtocol(store)
    index = store.read_index()
    wanted = list(dict.fromkeys(names)) or sorted(index)
    unknown = [n for n in wanted if n not in index]
    if unknown:
        raise UsageError(
            f"no certificate named {', '.join(map(repr, unknown))} in the fleet store {store.location}",
            "see `certman store status` for the names",
        )
    installed = protocol.installed()
    declared = declared_specs(settings)
    results: list[SyncResult] = []
    deployments: list[tuple[CertSpec, Deployment]] = []
    for name in wanted:
        entry = index[name]
        version, serial = entry.version or "", entry.serial
        try:
            have = installed.get(name)
            if have is not None and int(have) > int(version):
                raise KeystoreError(
                    f"{name}: the store's version {version} is older than {have}, which this host installed; "
                    "not installing it",
                    "the store may have been restored from an old backup; the local certificate is still served",
                )
            live = local.read_index().get(name)
            if live is not None and live.serial == serial:
                if have != version:
                    protocol.record_install(name, version)
                _follow_revocation(local, store, name, entry)
                results.append(SyncResult(name, "current", version, serial))
                continue
            spec = _host_spec(name, store, local, declared)
            _install(local, store, spec, version)
            protocol.record_install(name, version)
            _follow_revocation(local, store, name, entry)
            if spec.reloaders:
                deployments.append((spec, deployment_of(local, spec, serial or "")))
            results.append(SyncResult(name, "installed", version, serial))
        except CertmanError as exc:
            results.append(SyncResult(name, "failed", version, serial, exc.message, exc.hint))
    if not names:
        results += _follow_removals(local, protocol, set(installed) - set(index))
    if deployments:
        outcome = deploy(deployments, timeout=deploy_timeout)
        results = [_with_deploy_error(r, outcome.errors.get(r.name)) for r in results]
    return results


def _follow_revocation(local: FileKeystore, store: PostgresKeystore, name: str, entry: IndexEntry) -> None:
    """Record here the revocation another host recorded in the store (``certman revoke``), so
    this host's renewal leaves the revoked certificate alone as that host's does."""
    if not entry.revoked or local.read_revocation(name, entry.serial) is not None:
        return
    marker = store.read_revocation(name)
    if marker is not None:
        with local.lock_cert(name):
            local.mark_revoked(name, marker)


def _follow_removals(local: FileKeystore, protocol: FleetProtocol, removed: set[str]) -> list[SyncResult]:
    """Archive here what another host removed from the store (``certman remove``) after this
    host installed it; the install record goes too, so a later local certificate of the name stays."""
    results = []
    for name in sorted(removed):
        try:
            if local.has(name):
                with local.lock_cert(name):
                    local.archive_cert(name, archive_stamp(utc_now()))
            protocol.forget_install(name)
            results.append(SyncResult(name, "removed", None, None))
        except CertmanError as exc:
            results.append(SyncResult(name, "failed", None, None, exc.message, exc.hint))
    return results


# What the hosts of a fleet share about a certificate (issue 13: identifiers, key type,
# CA, profile, preferred chain) and its renewal window; the rest is each host's own.
SHARED = ("identifiers", "server", "key_type", "profile", "preferred_chain", "renew_before_days")


def adopt_shared_spec(local: FileKeystore, store: PostgresKeystore, name: str) -> None:
    """Give this host's stored spec of ``name`` the store's ``SHARED`` settings, if they differ
    (another host reconfigured it). The caller holds the lease on ``name``."""
    if not (local.has(name) and store.has(name)):
        return
    mine, fleets = local.read_spec(name), store.read_spec(name)
    changed = {f: getattr(fleets, f) for f in SHARED if getattr(fleets, f) != getattr(mine, f)}
    if changed:
        with local.lock_cert(name):
            local.write_spec(replace(mine, **changed))


def _with_deploy_error(result: SyncResult, error: CertmanError | None) -> SyncResult:
    if error is None:
        return result
    return replace(result, error=f"installed, not deployed: {error.message}", hint=error.hint)


def _host_spec(name: str, store: PostgresKeystore, local: FileKeystore, declared: dict[str, CertSpec]) -> CertSpec:
    """How this host keeps ``name``: its declaration, its stored spec, or the store's without reloaders."""
    if name in declared:
        return declared[name]
    if local.has(name):
        return local.read_spec(name)
    return replace(store.read_spec(name), reloaders=())


def _install(local: FileKeystore, store: PostgresKeystore, spec: CertSpec, version: str) -> None:
    pulled = store.read_version(spec.name, version)
    if pulled is None:
        raise KeystoreError(f"{spec.name}: version {version} is missing from the fleet store {store.location}")
    key_pem, leaf_pem, chain_pem, meta = pulled
    where = f"{spec.name} version {version} from the fleet store"
    try:
        leaf = x509.load_pem_x509_certificate(leaf_pem)
        key = load_key(key_pem)
    except (ValueError, UsageError) as exc:
        raise KeystoreError(f"{where} is not a certificate and its key: {exc}") from None
    if not public_keys_match(key, leaf):
        raise KeystoreError(f"{where}: the key does not match the certificate", "not installed; see docs/fleet.md")
    if format(leaf.serial_number, "x") != meta.serial:
        raise KeystoreError(f"{where}: the certificate is not serial {meta.serial}", "not installed")
    if leaf.not_valid_after_utc <= utc_now():
        raise KeystoreError(f"{where} expired at {leaf.not_valid_after_utc:%Y-%m-%d %H:%M}Z", "not installed")
    with local.lock_cert(spec.name):
        local.store_version(spec, key_pem, leaf_pem, chain_pem, meta)


def exit_code(results: list[SyncResult]) -> int:
    """0 when every certificate is current or installed, 7 when any failed."""
    return 7 if any(not r.ok for r in results) else 0
