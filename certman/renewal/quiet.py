"""Certificates a renew run skips with no news, decided from the index alone.

``digest_of`` makes the ``RenewalDigest`` of a state (stored in the certificate's index
entry, see ``keystore.digests``); ``quiet_results`` finds every certificate whose digest
says a run at ``now`` skips it, and ``QuietResults.result`` gives, for one of them, the
same ``CertResult`` that planning it from its state.json would give (``plan.plan_one``,
``plan.skip_result``). Everything else is planned as before. A no-op run over 100,000
certificates then reads index.json and no state file, and makes a result only for what
it shows (``report.RunResults``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping

from ..config import CertSpec
from ..keystore.decoders import QuietView
from ..keystore.records import IndexEntry, RenewalDigest
from ..keystore.state_records import RenewalState
from ..keystore.times import encode_time
from . import rules
from .report import CertResult

UTC = datetime.UTC


def digest_of(name: str, entry: IndexEntry, state: RenewalState) -> RenewalDigest | None:
    """The digest of ``state`` for ``entry``; None when the state needs a look at every run
    (a pending deploy, a revocation, an ARI window never fetched for this certificate)."""
    if entry.revoked or rules.deploy_pending(entry, state):
        return None
    due, _ = rules.renew_at(name, entry, state)
    quiet_until = due
    if entry.ari_cert_id:
        ari = state.ari
        if ari is None or ari.cert_id != entry.ari_cert_id or ari.next_check is None:
            return None
        quiet_until = min(due, ari.next_check)
    held = state.next_attempt if state.consecutive_failures else None
    # Stored in whole seconds: cut down, the quiet span ends no later than the state's.
    return RenewalDigest(
        serial=entry.serial,
        quiet_until=quiet_until.replace(microsecond=0),
        due=due.replace(microsecond=0),
        quiet_from=held,
        last_success=state.last_success,
        last_failure=state.last_failure,
        consecutive_failures=state.consecutive_failures,
    )


class QuietResults:
    """The certificates a run at ``now`` skips on their digest alone, held as their index
    views: a ``CertResult`` is made only for one that is asked for (``result``), so a no-op
    run over 100,000 certificates builds none for its human output (``report.RunResults``)."""

    def __init__(
        self, names: list[str], views: Mapping[str, QuietView], action: str, soonest: datetime.datetime | None
    ) -> None:
        self.names = frozenset(names)
        self._views = views
        self._action = action
        self._soonest = soonest

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __len__(self) -> int:
        return len(self.names)

    def result(self, name: str) -> CertResult:
        """``name``'s result, the one planning it from its state.json would give."""
        entry = self._views[name]
        digest = entry.renewal
        assert digest is not None  # held only with a digest (``quiet_results``)
        return CertResult(
            name,
            self._action,
            f"not due until {encode_time(digest.due)}",
            serial=entry.serial,
            not_after=entry.not_after,
            next_renewal=digest.due,
            last_success=digest.last_success,
            last_failure=digest.last_failure,
            consecutive_failures=digest.consecutive_failures,
        )

    def soonest(self) -> datetime.datetime | None:
        """The earliest renewal time among them (None when there are none)."""
        return self._soonest


def quiet_results(
    names: Iterable[str],
    index: Mapping[str, QuietView],
    declared: Mapping[str, CertSpec],
    now: datetime.datetime,
    *,
    check: bool = False,
) -> QuietResults:
    """Those of ``names`` a run at ``now`` skips on their digest alone (under ``check``:
    reported not-due). A declared certificate is left to the plan, which compares its
    declaration with the record."""
    quiet: list[str] = []
    get = index.get
    utc = UTC
    soonest = None
    for name in names:
        entry = get(name)
        if entry is None:
            continue
        digest = entry.renewal
        # RenewalDigest.quiet, QuietView.revoked and .stored_as_written spelled out: this
        # loop runs per certificate of 100,000.
        if digest is None or digest.serial != entry.serial or not now < digest.quiet_until:
            continue
        if digest.quiet_from is not None and digest.quiet_from > now:
            continue
        if entry.revoked_serial is not None and entry.revoked_serial == entry.serial:
            continue
        after = entry.not_after
        if after.tzinfo is not utc or after.microsecond or name in declared:
            continue
        quiet.append(name)
        if soonest is None or digest.due < soonest:
            soonest = digest.due
    return QuietResults(quiet, index, "not-due" if check else "skipped", soonest)
