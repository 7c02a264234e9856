"""One word for a certificate's state in every human output: list, explain, renew, renew --check.

    ok           nothing to do until its renewal time
    due          the next run renews it
    backing off  recent attempts failed; the next waits for the backoff to end
    undeployed   stored, but its proxy has not taken it; the next run reloads
    revoked      revoked; renewal leaves it alone until it is issued again
    expired      past its notAfter
    renewed, issued, deployed, failed   what this run did (renew)

The JSON documents keep their own documented values (``action``); these words are for
people, and ``terminal.COLOURS`` colours them.
"""

from __future__ import annotations

import datetime
from typing import Any

from ..keystore.records import IndexEntry

OK, DUE, BACKING_OFF, UNDEPLOYED, REVOKED, EXPIRED = "ok", "due", "backing off", "undeployed", "revoked", "expired"
DONE = ("renewed", "issued", "deployed", "failed")


def of_decision(action: str, reason: str) -> str:
    """The word for the next run's decision (``renewal.rules.Decision``, or renew --check's
    ``due``/``not-due`` result)."""
    if action in DONE:
        return action
    if reason.startswith("revoked"):
        return REVOKED
    if action == "deploy" or reason.startswith("issued, not deployed"):
        return UNDEPLOYED
    if action in ("renew", "due"):
        return DUE
    if "backing off" in reason:
        return BACKING_OFF
    return OK


def of_result(result: Any) -> str:
    """The word for one ``CertResult`` of a renew run (or of renew --check)."""
    if result.action == "skipped" and result.error is not None:
        return BACKING_OFF
    return of_decision(result.action, result.reason)


def of_entry(entry: IndexEntry, now: datetime.datetime, decision: Any) -> str:
    """The word ``list`` shows: revoked or expired from the index entry, otherwise the word
    of ``decision``, the one renew and explain take (``lifecycle.list_decisions``, which
    reads no state file)."""
    if entry.revoked:
        return REVOKED
    if entry.not_after <= now:
        return EXPIRED
    return of_decision(decision.action, decision.reason)
