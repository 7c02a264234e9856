"""`certman explain`: why and when each certificate renews, in plain sentences.

Reads only the index and state files and applies the same rules as `certman renew`
(``renewal.decide``), so what it says is what the next run will do. No network.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..config import Settings
from ..declaration.diff import SpecDiff
from ..errors import UsageError
from ..keystore import Keystore
from ..keystore.records import IndexEntry
from ..keystore.state_records import RenewalState
from ..keystore.times import Clock, encode_time, utc_now
from ..when import days_left, human_time, span
from . import rules as renewal


@dataclass(frozen=True)
class Explanation:
    name: str
    action: str
    renews_at: datetime.datetime | None
    sentences: tuple[str, ...]
    # The decision's short reason, from which the CLI picks its status word.
    reason: str = ""
    # How the certman.toml declaration differs from the record, and whether that re-issues.
    declaration: SpecDiff | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "renews_at": encode_time(self.renews_at),
            "explanation": list(self.sentences),
            "declaration": self.declaration.to_dict() if self.declaration else None,
        }


def explain(
    keystore: Keystore,
    names: Iterable[str] = (),
    *,
    settings: Settings | None = None,
    clock: Clock = utc_now,
) -> list[Explanation]:
    """One explanation per stored or declared certificate (or per name in ``names``).

    The verdict comes from `renew.next_step`, the very planning `certman renew` runs,
    so revocation, declarations and backoff are judged the same way. ``UsageError``
    for an unknown name; ``KeystoreError`` for an unreadable index or state.
    """
    from .declared import declared_specs
    from .plan import declaration_diff, next_step

    now = clock()
    index = keystore.read_index()
    declared = declared_specs(settings, keystore) if settings is not None else {}
    wanted = list(dict.fromkeys(names)) or sorted(set(index) | set(declared))
    unknown = [n for n in wanted if n not in index and n not in declared]
    if unknown:
        raise UsageError(
            f"no certificate named {', '.join(map(repr, unknown))} in {keystore.location}",
            "see `certman list` for the names",
        )
    states = keystore.read_states(wanted)
    explanations = []
    for name in wanted:
        decision = next_step(keystore, name, index.get(name), states[name], declared.get(name), now)
        if name not in index:
            explanations.append(
                Explanation(
                    name,
                    decision.action,
                    decision.renew_at,
                    (
                        f"{name} is declared in certman.toml but not issued yet: {decision.reason}.",
                        _verdict(decision, now),
                    ),
                    decision.reason,
                )
            )
        else:
            explained = explain_one(name, index[name], states[name], now, decision)
            diff = declaration_diff(keystore, declared[name]) if name in declared else None
            if diff is not None and diff.changes:
                said = f"Its declaration in certman.toml differs from the record: {_declared(diff)}."
                explained = replace(explained, sentences=(said, *explained.sentences), declaration=diff)
            explanations.append(explained)
    return explanations


def _declared(diff: SpecDiff) -> str:
    if diff.reissue:
        return f"{diff.reissue_reasons()}, so a new certificate is ordered"
    return f"{', '.join(diff.fields)} changed, which updates the record without ordering a certificate"


def explain_one(
    name: str,
    entry: IndexEntry,
    state: RenewalState,
    now: datetime.datetime,
    decision: renewal.Decision | None = None,
) -> Explanation:
    """Sentences for one stored certificate; ``decision`` defaults to the pure due rule."""
    decision = decision or renewal.decide(name, entry, state, now)
    sentences = [
        _lifetime(name, entry, now),
        *_rule(name, entry, state),
        *_failures(state, now),
        *_deploy(entry, state),
        _verdict(decision, now),
    ]
    return Explanation(name, decision.action, decision.renew_at, tuple(s for s in sentences if s), decision.reason)


def _when(moment: datetime.datetime | None) -> str:
    return human_time(moment, "an unknown time")


def _days(count: int) -> str:
    return "less than a day" if count < 1 else f"{count} day" + ("s" if count != 1 else "")


def _lifetime(name: str, entry: IndexEntry, now: datetime.datetime) -> str:
    not_before, not_after = entry.not_before, entry.not_after
    idents = ", ".join(entry.identifiers) or name
    lifetime = span(not_after - not_before, nearest=True)
    if not_after <= now:
        return f"{name} ({idents}) is a {lifetime} certificate that EXPIRED on {_when(not_after)}."
    return (
        f"{name} ({idents}) is a {lifetime} certificate, valid until {_when(not_after)}, "
        f"{_days(days_left(not_after, now))} left."
    )


def _rule(name: str, entry: IndexEntry, state: RenewalState) -> list[str]:
    ari = state.ari
    if ari is not None and renewal.ari_window_usable(entry, ari):
        start, end = ari.window_start, ari.window_end
        chosen = ari.chosen or start
        sentences = [
            f"The CA suggested renewing between {_when(start)} and {_when(end)} (ARI, RFC 9773); "
            f"certman picked {_when(chosen)} inside that window, the same time on every run."
        ]
        if ari.explanation_url:
            sentences.append(f"The CA explains its window at {ari.explanation_url}.")
        if ari.next_check:
            sentences.append(f"It asks the CA again after {_when(ari.next_check)}.")
        return sentences
    if ari is not None and ari.unsupported:
        prefix = "The CA offers no renewal information (ARI), so the lifetime rule applies: "
    elif entry.ari_cert_id and ari is None:
        prefix = "No ARI window has been fetched for this certificate yet, so for now the lifetime rule applies: "
    else:
        prefix = "The lifetime rule applies: "
    due = renewal.lifetime_renew_at(name, entry)
    if renewal.renew_before_applies(entry):
        rule = f"renew {entry.renew_before_days} days before expiry (renew_before)"
    else:
        rule = "renew once at most 1/3 of the lifetime is left (1/2 for certificates under 10 days)"
        if entry.renew_before_days is not None:
            prefix = (
                f"renew_before_days = {entry.renew_before_days} is not shorter than this certificate's "
                f"lifetime, so the lifetime rule applies: "
            )
    return [
        f"{prefix}{rule}, shifted by a delay that is fixed for this certificate so a fleet does not "
        f"renew all at once: {_when(due)}."
    ]


def _failures(state: RenewalState, now: datetime.datetime) -> list[str]:
    failures = state.consecutive_failures
    if not failures:
        return []
    sentences = [
        f"The last {failures} attempt(s) failed, most recently at "
        f"{_when(state.last_failure)}: {state.last_error or 'no detail'}."
    ]
    retry_after = state.retry_after
    if retry_after is not None and retry_after > now:
        sentences.append(
            f"The CA asked certman not to come back before {_when(retry_after)} (Retry-After, "
            "for example a rate limit), and it will not."
        )
    next_attempt = state.next_attempt
    if next_attempt is not None and next_attempt > now:
        sentences.append(
            f"It backs off (1 min, 10 min, 100 min, then daily) until {_when(next_attempt)}; "
            "`certman renew --force` tries now."
        )
    return sentences


def _deploy(entry: IndexEntry, state: RenewalState) -> list[str]:
    if state.deploy is not None and renewal.deploy_pending(entry, state):
        return [
            f"The current certificate is stored but its proxy has not taken it: {state.deploy.error}. "
            "The next run retries the reload without issuing again."
        ]
    return []


def _verdict(decision: renewal.Decision, now: datetime.datetime) -> str:
    if decision.reason.startswith("revoked"):
        return f"Next `certman renew` leaves it alone: it was {decision.reason}."
    if decision.action == renewal.RENEW:
        return f"Next `certman renew` renews it now ({decision.reason})."
    if decision.action == renewal.DEPLOY:
        return "Next `certman renew` reloads its proxy."
    if decision.renew_at is not None:
        return f"Next renewal: {_when(decision.renew_at)}, in {span(decision.renew_at - now)}."
    return f"Next `certman renew` leaves it alone ({decision.reason})."
