"""What a renew run reports: one ``CertResult`` per certificate, in a ``RenewReport``.

``to_dict`` is the ``certman renew --json`` document (docs/renewal.md, "JSON output").
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, overload

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


class Quiet(Protocol):
    """Certificates skipped with no news, each result made on demand (``quiet.QuietResults``)."""

    def __contains__(self, name: object) -> bool: ...
    def __len__(self) -> int: ...
    def result(self, name: str) -> CertResult: ...
    def soonest(self) -> datetime.datetime | None: ...


class RunResults(Sequence[CertResult]):
    """One result per name of ``order``: from ``news`` (every certificate the run planned),
    else made on demand by ``quiet``. A no-op run over 100,000 certificates makes none for
    its human output, which folds the quiet ones into one line (``cli.render_renew``)."""

    def __init__(self, order: Sequence[str], news: Mapping[str, CertResult], quiet: Quiet) -> None:
        self._order = order
        self._news = news
        self.quiet = quiet

    def __len__(self) -> int:
        return len(self._order)

    @overload
    def __getitem__(self, index: int) -> CertResult: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[CertResult]: ...
    def __getitem__(self, index: int | slice) -> CertResult | Sequence[CertResult]:
        if isinstance(index, slice):
            return [self._of(name) for name in self._order[index]]
        return self._of(self._order[index])

    def __iter__(self) -> Iterator[CertResult]:
        return map(self._of, self._order)

    def _of(self, name: str) -> CertResult:
        found = self._news.get(name)
        return found if found is not None else self.quiet.result(name)

    @property
    def news(self) -> list[CertResult]:
        """The results not made by ``quiet``, in order."""
        news = self._news
        return [news[n] for n in self._order if n in news]


def news_of(results: Sequence[CertResult]) -> tuple[Sequence[CertResult], int, datetime.datetime | None]:
    """The results of ``results`` not held as quiet, how many are, and their soonest renewal."""
    if isinstance(results, RunResults):
        return results.news, len(results.quiet), results.quiet.soonest()
    return results, 0, None


@dataclass(frozen=True)
class RenewReport:
    # A tuple, or a RunResults whose quiet results are made on demand.
    results: Sequence[CertResult]
    checked_at: datetime.datetime
    # The batch deploy: every reloader call and verify check of this run.
    deploy: DeployResult = field(default_factory=lambda: DeployResult({}))
    # Each live/<name> this run put back (see certman.keystore.live_links).
    repaired: tuple[LiveRepair, ...] = ()
    # ``renew --dry-run``: every result is a rehearsal.
    dry_run: bool = False

    @functools.cached_property
    def failed(self) -> list[CertResult]:
        # Cached: the CLI asks three times. A quiet result has no error: not made for this.
        return [r for r in news_of(self.results)[0] if r.error is not None]

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
