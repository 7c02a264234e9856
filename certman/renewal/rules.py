"""When a certificate is due: ARI window, else the lifetime rule; jitter and failure backoff.

Pure functions over the index entry of a certificate (``IndexEntry``) and its
``RenewalState``; ``now`` (a UTC datetime the caller's clock gave) is always a
parameter, nothing here touches the network or the disk.

    ARI (RFC 9773)    a window the CA suggested for *this* certificate (same CertID,
                      ending after it was issued): renew at a time inside it that is
                      stable per certificate.
    lifetime rule     renew once at most 1/3 of the lifetime remains (1/2 under 10
                      days), or ``renew_before`` ahead of expiry; shifted later by up
                      to a tenth of that margin, deterministically per certificate.
    backoff           after failures: 1 min, 10 min, 100 min, then daily (Let's
                      Encrypt's integration guide), never before the CA's Retry-After.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

from ..keystore.records import IndexEntry
from ..keystore.state_records import AriState, RenewalState
from ..keystore.times import encode_time

SHORT_LIFETIME = datetime.timedelta(days=10)
JITTER_SHARE = 0.1
BACKOFF_STEPS = (datetime.timedelta(minutes=1), datetime.timedelta(minutes=10), datetime.timedelta(minutes=100))
BACKOFF_CAP = datetime.timedelta(days=1)
# RFC 9773 §4.3: without Retry-After, check again in about six hours; clamp what a CA
# says so that neither a typo nor a hostile value makes us hammer it or forget it.
ARI_DEFAULT_CHECK = datetime.timedelta(hours=6)
ARI_MIN_CHECK = datetime.timedelta(minutes=1)
ARI_MAX_CHECK = datetime.timedelta(days=1)

RENEW = "renew"
SKIP = "skip"
DEPLOY = "deploy"


def stable_fraction(*parts: str) -> float:
    """A number in [0, 1) fixed by ``parts``: the same certificate always draws the same."""
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Decision:
    """What the renewal job should do with one certificate, and why."""

    action: str
    reason: str
    renew_at: datetime.datetime | None = None


def renew_before_applies(entry: IndexEntry) -> bool:
    """Whether ``renew_before_days`` decides: it is set, and shorter than the certificate's
    lifetime. A longer one would make every run renew (and spend the CA's rate limits),
    so the lifetime rule decides instead and ``explain`` says so."""
    days = entry.renew_before_days
    return days is not None and datetime.timedelta(days=days) < entry.not_after - entry.not_before


def lifetime_renew_at(name: str, entry: IndexEntry) -> datetime.datetime:
    """When the lifetime rule (or ``renew_before_days``) makes this certificate due."""
    lifetime = entry.not_after - entry.not_before
    if entry.renew_before_days is not None and renew_before_applies(entry):
        margin = datetime.timedelta(days=entry.renew_before_days)
    else:
        margin = lifetime / 2 if lifetime < SHORT_LIFETIME else lifetime / 3
    jitter = margin * JITTER_SHARE * stable_fraction(name, entry.serial or "")
    return entry.not_after - margin + jitter


def ari_window_usable(entry: IndexEntry, ari: AriState | None) -> bool:
    """Whether a stored window applies to ``entry``'s certificate (``AriState.usable_for``)."""
    return ari is not None and ari.usable_for(entry.ari_cert_id, entry.not_before)


def ari_renew_at(cert_id: str, start: datetime.datetime, end: datetime.datetime) -> datetime.datetime:
    """RFC 9773 §4.2: a random time inside the window, here stable for the certificate."""
    if end <= start:
        return start
    return start + (end - start) * stable_fraction("ari", cert_id)


def ari_next_check(now: datetime.datetime, retry_after: float | None) -> datetime.datetime:
    wait = ARI_DEFAULT_CHECK if retry_after is None else datetime.timedelta(seconds=retry_after)
    return now + min(max(wait, ARI_MIN_CHECK), ARI_MAX_CHECK)


def ari_check_due(entry: IndexEntry, state: RenewalState, now: datetime.datetime) -> bool:
    """Whether the CA's renewal info for this certificate should be (re)fetched now."""
    if not entry.ari_cert_id:
        return False
    ari = state.ari
    if ari is None or ari.cert_id != entry.ari_cert_id:
        return True
    return ari.next_check is None or ari.next_check <= now


def renew_at(name: str, entry: IndexEntry, state: RenewalState) -> tuple[datetime.datetime, str]:
    """When this certificate is due, and the rule that says so."""
    ari = state.ari
    if ari is not None and ari_window_usable(entry, ari):
        chosen = ari.chosen or ari.window_start
        if chosen is not None:
            return chosen, "inside the CA's ARI window"
    if renew_before_applies(entry):
        return lifetime_renew_at(name, entry), f"renew_before ({entry.renew_before_days} days) reached"
    return lifetime_renew_at(name, entry), "at most 1/3 of its lifetime left (1/2 under 10 days)"


def backoff_delay(consecutive_failures: int) -> datetime.timedelta:
    if consecutive_failures <= 0:
        return datetime.timedelta(0)
    if consecutive_failures <= len(BACKOFF_STEPS):
        return BACKOFF_STEPS[consecutive_failures - 1]
    return BACKOFF_CAP


def next_attempt_after_failure(
    attempted_at: datetime.datetime, consecutive_failures: int, retry_after: datetime.datetime | None
) -> datetime.datetime:
    """The backoff step, or the CA's Retry-After when that is later."""
    after_backoff = attempted_at + backoff_delay(consecutive_failures)
    return max(after_backoff, retry_after) if retry_after is not None else after_backoff


def deploy_pending(entry: IndexEntry, state: RenewalState) -> bool:
    """Whether the live certificate is stored but its reloaders have not taken it yet."""
    deploy = state.deploy
    return deploy is not None and deploy.pending and deploy.serial == entry.serial


def backing_off(state: RenewalState, now: datetime.datetime) -> datetime.datetime | None:
    """Until when failures hold the next attempt back, or None once it is allowed."""
    next_attempt = state.next_attempt
    if state.consecutive_failures and next_attempt is not None and now < next_attempt:
        return next_attempt
    return None


def decide(
    name: str, entry: IndexEntry, state: RenewalState, now: datetime.datetime, *, force: bool = False
) -> Decision:
    """Renew, deploy again, or skip; ``--force`` overrides the due rule and the backoff."""
    if force:
        return Decision(RENEW, "forced")
    due, why = renew_at(name, entry, state)
    # A reload that keeps failing must not pin an expiring certificate: once it is
    # due, renewing (and deploying the new one) wins over retrying the old deploy.
    if deploy_pending(entry, state) and now < due:
        return Decision(DEPLOY, "issued, not deployed: retrying the reload", due)
    next_attempt = backing_off(state, now)
    if next_attempt is not None:
        failures = state.consecutive_failures
        return Decision(
            SKIP, f"backing off after {failures} failure(s) until {encode_time(next_attempt)}", max(due, next_attempt)
        )
    if now >= due:
        return Decision(RENEW, why, due)
    return Decision(SKIP, f"not due until {encode_time(due)}", due)
