"""Human summary and --json document of a renewal run. No logic beyond formatting."""

from __future__ import annotations

import datetime
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..renewal.report import news_of
from ..when import human_date, human_time, humanize_times
from . import tables, terminal
from .render import deploy_lines
from .vocabulary import OK, of_result

# Up to this many certificates with nothing to report get a row each; past it, one line.
QUIET_ROWS = 20


def renew_report(report: Any, *, as_json: bool) -> str:
    if as_json:
        # Compact: the pure-Python pretty printer alone costs 0.5 s at 10,000 certificates.
        return json.dumps(report.to_dict())
    # Certificates held as quiet have no row of their own past QUIET_ROWS: never made.
    results, quiet, soonest = news_of(report.results)
    repaired = [r.describe() for r in report.repaired]
    if not results and not quiet:
        return "no certificates yet (see `certman issue --help` or declare some in certman.toml)"
    words = [of_result(r) for r in results]
    if quiet and len(_quiet_rows(results, words)) + quiet <= QUIET_ROWS:
        # Not folded after all: every row is shown, the held ones too.
        results, quiet, soonest = list(report.results), 0, None
        words = [of_result(r) for r in results]
    counts = Counter(words)
    if quiet:
        counts[OK] += quiet
    summary = ", ".join(f"{n} {word}" for word, n in sorted(counts.items()))
    failed = len(report.failed)
    shown, folded = _fold_quiet(results, words, quiet, soonest)
    lines = [
        *(["dry run: every certificate rehearsed; nothing stored, recorded or reloaded"] if report.dry_run else []),
        *repaired,
        *([_table([results[i] for i in shown], [words[i] for i in shown], terminal.width())] if shown else []),
        *folded,
        *terminal.wrap(
            f"{len(results) + quiet} certificate(s): {summary}"
            + (f"; {failed} with an error (details on stderr)" if failed else ""),
            indent="",
        ),
        *deploy_lines(report.deploy),
    ]
    return "\n".join(lines)


def _fold_quiet(
    results: Sequence[Any], words: list[str], held: int, soonest: datetime.datetime | None
) -> tuple[list[int], list[str]]:
    """Which rows the table shows, and the line said instead of the rest: past ``QUIET_ROWS``
    certificates with nothing to report (ok, and the ``held`` ones never made, renewing
    from ``soonest``), a run over 100,000 lists only the news."""
    quiet = _quiet_rows(results, words)
    if len(quiet) + held <= QUIET_ROWS:
        return list(range(len(results))), []
    folded = set(quiet)
    times = [results[i].next_renewal for i in quiet if results[i].next_renewal]
    soonest = min([*times, soonest] if soonest else times, default=None)
    when = f"; the first renews {human_time(soonest)}" if soonest else ""
    line = f"{len(quiet) + held} ok certificate(s) not listed{when} (`certman list` lists them)"
    return [i for i in range(len(results)) if i not in folded], terminal.wrap(line, indent="")


def _quiet_rows(results: Sequence[Any], words: list[str]) -> list[int]:
    return [i for i, word in enumerate(words) if word == OK and results[i].ok]


def _table(results: Any, words: list[str], width: int) -> str:
    """One row per certificate with its reason beside it when the whole reason fits,
    else under it, wrapped (the name and status are never cut for a reason)."""
    reasons = [humanize_times(_why(r)) for r in results]
    columns = [
        tables.Column("NAME", tuple(r.name for r in results)),
        tables.Column("STATUS", tuple(words), styled=True),
        tables.Column("EXPIRES", tuple(human_time(r.not_after) for r in results)),
        tables.Column("NEXT RENEWAL", tuple(human_time(r.next_renewal) for r in results)),
    ]
    steps: list[tables.Step] = [
        tables.Drop("EXPIRES"),
        tables.Swap("NEXT RENEWAL", tables.Column("NEXT RENEWAL", tuple(human_date(r.next_renewal) for r in results))),
        tables.Squeeze("NAME"),
    ]
    reason = tables.Column("REASON / ERROR", tuple(reasons))
    beside = tables.fit([*columns, reason], width, steps[:2])
    if tables.total(beside) <= width:
        return tables.render(beside)
    rows = tables.render(tables.fit(columns, width, steps)).split("\n")
    lines = [rows[0]]
    for row, why in zip(rows[1:], reasons, strict=True):
        lines += [row, *terminal.wrap(why, indent="    ", columns=width)]
    return "\n".join(lines)


def _why(result: Any) -> str:
    if result.error is None:
        return str(result.reason)
    if result.action == "failed":
        return str(result.error)
    return f"{result.reason}; error: {result.error}"
