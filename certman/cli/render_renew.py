"""Human summary and --json document of a renewal run. No logic beyond formatting."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ..keystore.times import encode_time
from .render import deploy_lines, table


def renew_report(report: Any, *, as_json: bool) -> str:
    if as_json:
        # Compact: the pure-Python pretty printer alone costs 0.5 s at 10,000 certificates.
        return json.dumps(report.to_dict())
    results = report.results
    repaired = [r.describe() for r in report.repaired]
    if not results:
        return "no certificates yet (see `certman issue --help` or declare some in certman.toml)"
    rows = [
        [r.name, r.action, encode_time(r.not_after) or "-", encode_time(r.next_renewal) or "-", _why(r)]
        for r in results
    ]
    counts = Counter(r.action for r in results)
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
    failed = len(report.failed)
    lines = [
        *(["dry run: every certificate rehearsed; nothing stored, recorded or reloaded"] if report.dry_run else []),
        *repaired,
        table(["NAME", "ACTION", "NOT AFTER", "NEXT RENEWAL", "REASON / ERROR"], rows),
        f"{len(results)} certificate(s): {summary}"
        + (f"; {failed} with an error (details on stderr)" if failed else ""),
        *deploy_lines(report.deploy),
    ]
    return "\n".join(lines)


def _why(result: Any) -> str:
    if result.error is None:
        return str(result.reason)
    if result.action == "failed":
        return str(result.error)
    return f"{result.reason}; error: {result.error}"
