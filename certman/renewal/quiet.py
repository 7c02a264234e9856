"""Certificates a renew run skips with no news, decided from the index alone.

``digest_of`` makes the ``RenewalDigest`` of a state (stored in the certificate's index
entry, see ``keystore.digests``); ``quiet_results`` gives, for every certificate whose
digest says a run at ``now`` skips it, the same ``CertResult`` that planning it from its
state.json would give (``plan.plan_one``, ``plan.skip_result``). Everything else is planned
as before. A no-op run over 100,000 certificates then reads index.json and no state file.
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


def quiet_results(
    names: Iterable[str],
    index: Mapping[str, QuietView],
    declared: Mapping[str, CertSpec],
    now: datetime.datetime,
    *,
    check: bool = False,
) -> dict[str, CertResult]:
    """The result of each of ``names`` a run at ``now`` skips on its digest alone (under
    ``check``: reports not-due). A declared certificate is left to the plan, which compares
    its declaration with the record."""
    results: dict[str, CertResult] = {}
    action = "not-due" if check else "skipped"
    for name in names:
        entry = index.get(name)
        if entry is None or name in declared:
            continue
        digest = entry.renewal
        if digest is None or entry.revoked or not entry.stored_as_written or not digest.quiet(entry.serial, now):
            continue
        due = digest.due
        results[name] = CertResult(
            name,
            action,
            # encode_time's result, without its checks: per certificate of 100,000.
            f"not due until {due.isoformat()[:19]}Z" if due.tzinfo is UTC else f"not due until {encode_time(due)}",
            serial=entry.serial,
            not_after=entry.not_after,
            next_renewal=digest.due,
            last_success=digest.last_success,
            last_failure=digest.last_failure,
            consecutive_failures=digest.consecutive_failures,
        )
    return results
