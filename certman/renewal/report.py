"""What a renew run reports: one ``CertResult`` per certificate, in a ``RenewReport``.

``to_dict`` is the ``certman renew --json`` document (docs/renewal.md, "JSON output").
"""

from __future__ import annotations

import datetime
import functools
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..deploy.outcome import DeployResult
from ..errors import PartialFailure
from ..keystore.live_links import LiveRepair
from ..keystore.times import encode_time


class CertResult(msgspec.Struct, frozen=True):
    """What the run did with one certificate. ``action`` is one of renewed, issued,
    deployed, skipped, failed (and due / not-due under ``--check``, rehearsed under ``--dry-run``)."""

    name: str
    action: str
    reason: str
    serial: str | None = None
    not_after: datetime.datetime | None = None
    next_renewal: datetime.datetime | None = None
    error: str | None = None
    hint: str | None = None
    last_success: datetime.datetime | None = None
    last_failure: datetime.datetime | None = None
    consecutive_failures: int = 0
    # A rehearsal (``renew --dry-run``): nothing was stored or recorded for it.
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "reason": self.reason,
            "serial": self.serial,
            "not_after": encode_time(self.not_after),
            "next_renewal": encode_time(self.next_renewal),
            "error": self.error,
            "hint": self.hint,
            "last_success": encode_time(self.last_success),
            "last_failure": encode_time(self.last_failure),
            "consecutive_failures": self.consecutive_failures,
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class RenewReport:
    results: tuple[CertResult, ...]
    checked_at: datetime.datetime
    # The batch deploy: every reloader call and verify check of this run.
    deploy: DeployResult = field(default_factory=lambda: DeployResult({}))
    # Each live/<name> this run put back (see certman.keystore.live_links).
    repaired: tuple[LiveRepair, ...] = ()
    # ``renew --dry-run``: every result is a rehearsal.
    dry_run: bool = False

    @functools.cached_property
    def failed(self) -> list[CertResult]:
        # Cached: the CLI asks three times, over 100,000 results in a no-op run.
        return [r for r in self.results if r.error is not None]

    @property
    def exit_code(self) -> int:
        return PartialFailure.exit_code if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_at": encode_time(self.checked_at),
            "exit_code": self.exit_code,
            "certificates": [r.to_dict() for r in self.results],
            "deploy": self.deploy.to_dict(),
            "repaired": [r.to_dict() for r in self.repaired],
            "dry_run": self.dry_run,
        }
