"""Deciding per certificate what a renew run does: issue, renew, deploy again or skip, and why.

Reads only the index and the states (no PEM, no network). ``next_step`` is the one
place ``explain`` and ``show`` ask, so they can never drift from ``renew``.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from msgspec import structs

from ..config import CertSpec
from ..declaration.diff import SpecDiff, diff_specs
from ..errors import CertmanError
from ..keystore.records import IndexEntry
from ..keystore.state_records import RenewalState
from ..keystore.times import encode_time
from . import rules as renewal
from .report import CertResult

if TYPE_CHECKING:
    from ..deploy.reloaders import Deployment
    from ..keystore import Keystore

log = logging.getLogger(__name__)

ISSUE = "issue"


@dataclass
class Plan:
    """One certificate's work in a run; the runner updates it as the work goes."""

    name: str
    action: str
    reason: str
    entry: IndexEntry | None
    state: RenewalState
    spec: CertSpec | None = None
    renew_at: datetime.datetime | None = None
    check_ari: bool = False
    deployment: tuple[CertSpec, Deployment] | None = field(default=None, repr=False)
    # Skipped because failures hold the next attempt back: only then is the last error
    # this run's news (a failed `renew --force` of a certificate not yet due is not).
    backing_off: bool = False
    # How the certman.toml declaration differs from the record (None: not declared, or not issued).
    declaration: SpecDiff | None = None

    @property
    def updates_record(self) -> bool:
        """Whether the run records the declaration without ordering a certificate for it."""
        return self.declaration is not None and bool(self.declaration.changes) and not self.declaration.reissue


def plan_each(
    keystore: Keystore,
    names: list[str],
    index: Mapping[str, IndexEntry],
    declared: Mapping[str, CertSpec],
    now: datetime.datetime,
    force: bool,
) -> tuple[list[Plan], dict[str, CertResult]]:
    """A plan per certificate; one that cannot be planned (say, a corrupt state.json)
    becomes a failed result of its own instead of stopping the whole batch."""
    try:
        states: Mapping[str, RenewalState] | None = keystore.read_states(names)
    except CertmanError:
        # Some state file is unreadable: read them one by one so only its certificate fails.
        states = None
    plans: list[Plan] = []
    unplanned: dict[str, CertResult] = {}
    for name in names:
        try:
            state = states[name] if states is not None else keystore.read_state(name)
            plans.append(plan_one(keystore, name, index.get(name), state, declared.get(name), now, force))
        except CertmanError as exc:
            unplanned[name] = CertResult(
                name, "failed", "could not decide whether to renew", error=exc.message, hint=exc.hint
            )
    return plans, unplanned


def plan_one(
    keystore: Keystore,
    name: str,
    entry: IndexEntry | None,
    state: RenewalState,
    declared: CertSpec | None,
    now: datetime.datetime,
    force: bool,
) -> Plan:
    diff = declaration_diff(keystore, declared) if entry is not None and declared is not None else None
    if entry is None or diff is not None and diff.reissue:
        reason = "declared in certman.toml, not yet issued"
        if diff is not None:
            reason = f"its declaration changed: {diff.reissue_reasons()}"
        waiting = renewal.backing_off(state, now)
        if waiting is not None and not force:
            failures = state.consecutive_failures
            why = f"{reason}; backing off after {failures} failure(s) until {encode_time(waiting)}"
            return Plan(name, renewal.SKIP, why, entry, state, declared, waiting, backing_off=True, declaration=diff)
        return Plan(name, ISSUE, reason, entry, state, declared, now, declaration=diff)
    revoked = keystore.read_revocation(name, entry.serial) if not force and entry.revoked else None
    if revoked is not None:
        return Plan(
            name,
            renewal.SKIP,
            f"revoked ({revoked.reason}) on {encode_time(revoked.revoked_at) or 'an unknown date'}; "
            f"`certman renew --force {name}` or `certman issue` renews it",
            entry,
            state,
            declared,
            declaration=diff,
        )
    decision = renewal.decide(name, entry, state, now, force=force)
    skip = decision.action == renewal.SKIP
    check_ari = skip and renewal.ari_check_due(entry, state, now)
    held_back = skip and renewal.backing_off(state, now) is not None
    plan = Plan(
        name,
        decision.action,
        decision.reason,
        entry,
        state,
        declared,
        decision.renew_at,
        check_ari,
        backing_off=held_back,
        declaration=diff,
    )
    if plan.updates_record and diff is not None:
        # Only how the certificate is obtained or deployed changed: record it, and hand the
        # live certificate to the new reloaders, but order nothing (issue 11).
        if diff.reloaders_changed and decision.action == renewal.SKIP:
            plan.action, plan.reason = renewal.DEPLOY, f"{diff.summary()}; redeploy"
        else:
            plan.reason = f"{decision.reason} ({diff.summary()})"
    return plan


def next_step(
    keystore: Keystore,
    name: str,
    entry: IndexEntry | None,
    state: RenewalState,
    declared: CertSpec | None,
    now: datetime.datetime,
) -> renewal.Decision:
    """What the next `certman renew` (without --force) does with ``name``, and why."""
    plan = plan_one(keystore, name, entry, state, declared, now, False)
    return renewal.Decision(renewal.RENEW if plan.action == ISSUE else plan.action, plan.reason, plan.renew_at)


def declaration_diff(keystore: Keystore, declared: CertSpec) -> SpecDiff:
    """How ``declared`` differs from the stored record of the same certificate.

    Compared as recorded (certman.recording): a spec stored with a relative path or a
    bare program name by an older certman is not a change of the declaration.
    """
    return diff_specs(keystore.read_spec(declared.name), declared)


def check_result(plan: Plan) -> CertResult:
    """What ``renew --check`` reports for ``plan``: due or not-due."""
    action = "not-due" if plan.action == renewal.SKIP else "due"
    reason = plan.reason
    if plan.check_ari:
        reason += " (the CA's ARI window will be checked first)"
    return structs.replace(skip_result(plan), action=action, reason=reason)


def skip_result(plan: Plan) -> CertResult:
    """The result of leaving ``plan``'s certificate as it is."""
    entry, state = plan.entry, plan.state
    return CertResult(
        plan.name,
        "skipped",
        plan.reason,
        serial=entry.serial if entry else None,
        not_after=entry.not_after if entry else None,
        next_renewal=plan.renew_at,
        error=state.last_error if plan.backing_off else None,
        last_success=state.last_success,
        last_failure=state.last_failure,
        consecutive_failures=state.consecutive_failures,
    )
