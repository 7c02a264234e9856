"""The renewal job: decide per certificate, renew what is due in a bounded pool, then deploy.

    renew(keystore, settings)
      -> index.json + state.json per certificate (no PEM parsing) + declared certificates
      -> decide (renewal.plan): renew / deploy again / skip, and why
      -> pool of ``jobs``: refresh ARI where its check time passed; issue what is due
         (``replaces`` = the old CertID when the CA speaks ARI); record success/failure
         (renewal.runner)
      -> deploy: each distinct reloader once for all its certificates
      -> RenewReport (one CertResult per certificate)

One certificate's failure never stops the others; it is recorded in its state with
the next attempt time (backoff, Retry-After) and reported.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from ..config import CertSpec, Settings
from ..deploy.outcome import DeployResult
from ..errors import CertmanError, KeystoreLocked, UsageError
from ..keystore import FileKeystore
from ..keystore.outcomes import redeploy_repaired
from ..keystore.records import IndexEntry, RenewalDigest
from ..keystore.times import Clock, archive_stamp, utc_now
from . import rules as renewal
from .declared import declared_specs
from .plan import Plan, check_result, next_step, plan_each, skip_result
from .quiet import digest_of, quiet_results
from .rehearse import rehearse_each
from .report import CertResult, RenewReport, RunResults

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..ca.accounts import AccountSettings

__all__ = ["DEFAULT_JOBS", "CertResult", "RenewReport", "next_step", "refresh_windows", "renew"]

DEFAULT_JOBS = 4


def renew(
    keystore: FileKeystore,
    settings: Settings,
    *,
    names: Iterable[str] = (),
    force: bool = False,
    check: bool = False,
    jobs: int = DEFAULT_JOBS,
    clock: Clock = utc_now,
    account: AccountSettings | None = None,
    deploy_timeout: float = 120.0,
    dry_run: bool = False,
) -> RenewReport:
    """What `certman renew` does: renew what is due among ``names`` (default: every stored
    and declared certificate), then deploy each distinct reloader once for the batch.

    A keystore left by a run killed mid-store is repaired first, and so is a ``live/<name>``
    that is not a link (``FileKeystore.repair_live``; ``report.repaired``). ``report.deploy`` holds
    the reloader calls and verify checks; a certificate's failure is in its ``CertResult``
    and ``report.exit_code`` (7), never raised. ``clock`` is read once: the whole run
    decides and records at that moment.
    ``deploy_timeout`` is in seconds per reloader. ``dry_run`` rehearses every selected
    certificate instead, due or not, and changes nothing (``renewal.rehearse``). ``UsageError`` for an unknown name
    or ``jobs`` < 1; ``KeystoreLocked`` if another run holds the renewal lock past
    the keystore's lock timeout. Every per-certificate failure is in the report.
    """
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {jobs}")
    if dry_run and check:
        raise UsageError("--dry-run and --check do not go together", "--check says what is due; --dry-run rehearses")
    # One listing of live/ for the crash check and the link repair below.
    listing = keystore.scan_live()
    if keystore.crashed(listing) and not dry_run:
        # A run killed between moving live/ and the index leaves the index stale; the
        # plan comes from the index, so repair it first.
        keystore.repair_index()
    now = clock()
    # Four fields of each entry, unless every entry is read anyway (renewal.quiet).
    views = None if dry_run or force else keystore.read_quiet()
    index = keystore.read_index() if views is None else None
    known: Collection[str] = views if views is not None else index or {}
    declared = declared_specs(settings, keystore)
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in known and n not in declared]
    if unknown:
        raise UsageError(
            f"no certificate named {', '.join(repr(n) for n in unknown)} in {keystore.root} or certman.toml",
            "see `certman list` for the names",
        )
    selected = names or sorted({*known, *declared} if declared else known)
    _warn_exposed(keystore, selected, known)
    if dry_run:
        # Every selected certificate, due or not, as certbot's renew --dry-run (renewal.rehearse).
        return rehearse_each(keystore, settings, selected, index or {}, declared, now, jobs=jobs, account=account)
    if check:
        _check_declared([declared[n] for n in selected if n in declared])
        quiet = quiet_results(selected, views or {}, declared, now, check=True)
        rest = _not_quiet(selected, quiet.names)
        index = index if index is not None else _entries_for(keystore, rest, known)
        plans, unplanned = plan_each(keystore, rest, index, declared, now, force)
        checked = {p.name: check_result(p) for p in plans}
        return RenewReport(RunResults(selected, {**unplanned, **checked}, quiet), now)
    # live/<name> replaced from outside (a restored backup, a deleted link): put back first,
    # so the proxies find their files again whether or not the certificate is due.
    stored = [n for n in selected if n in known] if declared else selected
    repaired = tuple(keystore.repair_live(stored, archive_stamp(now), listing))
    redeploy_repaired(keystore, repaired)
    # A repaired certificate's state changed after the index was read: planned from it.
    put_back = {r.name for r in repaired}
    unrepaired = [n for n in selected if n not in put_back] if put_back else selected
    quiet = quiet_results(unrepaired, views or {}, declared, now)
    rest = _not_quiet(selected, quiet.names)
    index = index if index is not None else _entries_for(keystore, rest, known)
    plans, unplanned = plan_each(keystore, rest, index, declared, now, force)

    busy = [p for p in plans if p.action != renewal.SKIP or p.check_ari or p.updates_record]
    results: dict[str, CertResult] = {p.name: skip_result(p) for p in plans if p not in busy}
    results.update(unplanned)
    # Skipped without a digest (a keystore from before digests, say): note one, once.
    undigested = [p.name for p in plans if p not in busy and p.entry and p.entry.renewal != quiet_digest(p)]
    deployed = DeployResult({})
    if busy:
        # One renew run at a time: a second one (a timer firing while an operator runs
        # `certman renew`) waits, then decides again on fresh state, never issuing twice.
        with keystore.lock_renewal():
            fresh, unplanned = plan_each(keystore, [p.name for p in busy], keystore.read_index(), declared, now, force)
            results.update(unplanned)
            from .runner import Runner, deploy_all  # deferred: the ACME and deploy stacks
            from .workers import Share, run_plans

            runner = Runner(keystore, settings, account, now, jobs=jobs)
            with keystore.digests_dropped([p.name for p in fresh]):
                share = Share(str(keystore.root), keystore.lock_timeout, settings, account, now, jobs)
                for plan, result in zip(fresh, run_plans(keystore, share, fresh, runner.run_all), strict=True):
                    results[plan.name] = result
                deployed = deploy_all(keystore, fresh, results, now, deploy_timeout)
                _note_renewal(keystore, [p.name for p in fresh] + undigested)
    elif undigested:
        try:
            with keystore.lock_renewal(wait=False):
                _note_renewal(keystore, undigested)
        except KeystoreLocked:
            log.debug("another renew run holds the lock: digests are noted by a later run")
    return RenewReport(RunResults(selected, results, quiet), now, deployed, repaired)


def refresh_windows(
    keystore: FileKeystore,
    settings: Settings,
    *,
    names: Iterable[str] = (),
    clock: Clock = utc_now,
    account: AccountSettings | None = None,
) -> None:
    """Fetch the ARI window (RFC 9773) of every stored certificate of ``names`` (default: all)
    whose check time passed, and record it in its state, as ``renew`` does before it decides;
    for a caller that decides with ``renew(check=True)`` afterwards (fleet renew). Issues and
    reloads nothing. A CA that cannot say is logged and recorded (the lifetime rule then
    decides); ``KeystoreLocked`` if another run holds the renewal lock past the lock timeout.
    """
    now = clock()
    index = keystore.read_index()
    selected = [n for n in dict.fromkeys(names) if n in index] if names else sorted(index)
    plans, _ = plan_each(keystore, selected, index, declared_specs(settings, keystore), now, False)
    if not any(p.check_ari for p in plans):
        return
    from .runner import Runner

    with keystore.lock_renewal():
        runner = Runner(keystore, settings, account, now)
        for plan in plans:
            try:
                runner.refresh_window(plan)
            except CertmanError as exc:  # the certificate's own run reports it; the others still get theirs
                log.warning("renewal information for %s: %s", plan.name, exc.message)


def _warn_exposed(keystore: FileKeystore, selected: list[str], known: Collection[str]) -> None:
    """A warning per live or account key (of the ``known`` among ``selected``) that others
    may read, on every run until it is fixed (``keystore.exposure``: certman does not change
    the mode itself); none to look for while the keystore's root keeps every other user out."""
    from ..keystore.exposure import exposed_keys, exposure_hint, reachable_by_others

    if not reachable_by_others(keystore.layout):
        return
    for path, mode in exposed_keys(keystore.layout, [n for n in selected if n in known]):
        log.warning("private key %s is mode %04o, readable by others (hint: %s)", path, mode, exposure_hint([path]))


def _check_declared(specs: list[CertSpec]) -> None:
    """The checks of its settings a real run makes before ordering each declared
    certificate (``declaration.checks``): `renew --check` exits 2 on a misspelt option, as
    the run would fail. No port or webroot is probed: the timer's renew may hold them."""
    from ..declaration.checks import check_spec

    for spec in specs:
        try:
            check_spec(spec, probe=False)
        except CertmanError as exc:
            exc.message = f"{spec.name}: {exc.message}"
            raise


def _not_quiet(selected: list[str], quiet: frozenset[str]) -> list[str]:
    """``selected`` but the ``quiet`` among them (a subset), in order."""
    # A no-op run: every one is quiet, and 100,000 lookups are saved.
    return [] if len(quiet) == len(selected) else [n for n in selected if n not in quiet]


def _entries_for(keystore: FileKeystore, names: list[str], known: Collection[str]) -> dict[str, IndexEntry]:
    """The whole index entries, read only when one of ``names`` has one (a run whose
    stored certificates are all quiet reads none)."""
    return keystore.read_index() if any(n in known for n in names) else {}


def quiet_digest(plan: Plan) -> RenewalDigest | None:
    """The digest of ``plan``'s state for its index entry, which the plan has."""
    assert plan.entry is not None
    return digest_of(plan.name, plan.entry, plan.state)


def _note_renewal(keystore: FileKeystore, names: list[str]) -> None:
    """Copy what `certman list` shows of each state (backing off, undeployed), and its
    renewal digest, into the index."""
    try:
        keystore.note_renewal(names, digest_of)
    except CertmanError as exc:
        # Each certificate's own result already says what failed; list may lag until the next run.
        log.warning("could not note the renewal states in the index: %s", exc.message)
