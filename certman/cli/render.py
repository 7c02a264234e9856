"""Human tables and JSON for the CLI. No logic beyond formatting."""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..keystore.times import Clock, encode_time, utc_now

if TYPE_CHECKING:
    from ..keystore.records import IndexEntry


def days_left(not_after: datetime.datetime, now: datetime.datetime) -> int:
    """Whole days from ``now`` until ``not_after``, rounded down (negative once expired)."""
    return int((not_after - now).total_seconds() // 86400)


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def certificate_list(index: Mapping[str, IndexEntry], *, as_json: bool, clock: Clock = utc_now) -> str:
    now = clock()
    entries: list[dict[str, Any]] = []
    for name in sorted(index):
        entry = index[name]
        entries.append(
            {
                "name": name,
                "identifiers": list(entry.identifiers),
                "not_after": encode_time(entry.not_after),
                "days_left": days_left(entry.not_after, now),
                "issuer": entry.issuer,
                "key_type": entry.key_type,
                "serial": entry.serial,
                "version": entry.version,
            }
        )
    if as_json:
        return json.dumps({"certificates": entries}, indent=2)
    if not entries:
        return "no certificates yet (see `certman issue --help`)"
    rows = [
        [
            str(e["name"]),
            ",".join(e["identifiers"]),
            str(e["not_after"] or "-"),
            str(e["days_left"]),
            str(e["issuer"] or "-"),
            str(e["key_type"] or "-"),
        ]
        for e in entries
    ]
    return table(["NAME", "IDENTIFIERS", "NOT AFTER", "DAYS LEFT", "ISSUER", "KEY TYPE"], rows)


def issue_result(result: Any, *, as_json: bool, changes: Any = None) -> str:
    """``changes``: the SpecDiff from the stored record (None for a certificate without one)."""
    data = {
        "name": result.name,
        "version": result.version,
        "serial": result.serial,
        "identifiers": list(result.identifiers),
        "not_before": encode_time(result.not_before),
        "not_after": encode_time(result.not_after),
        "issuer": result.issuer,
        "live": str(result.live.directory),
        "fullchain": str(result.live.fullchain),
        "privkey": str(result.live.privkey),
        "deploy": result.deploy.to_dict(),
        "repaired": [r.to_dict() for r in result.repaired],
        "changes": changes.to_dict() if changes is not None else None,
    }
    if as_json:
        return json.dumps(data, indent=2)
    return "\n".join(
        [
            *(r.describe() for r in result.repaired),
            *(settings_lines(changes) if changes is not None else []),
            f"issued {data['name']} ({', '.join(data['identifiers'])}), serial {data['serial']}, "
            f"valid until {data['not_after']}",
            f"  fullchain: {data['fullchain']}",
            f"  privkey:   {data['privkey']}",
            *deploy_lines(result.deploy),
        ]
    )


def settings_lines(diff: Any) -> list[str]:
    """What changed in a certificate's stored settings: a summary, then one line per field."""
    if not diff.changes:
        return ["settings: unchanged"]
    return [f"settings: {', '.join(diff.fields)} changed"] + [f"  {c.describe()}" for c in diff.changes]


def reconfigure_result(result: Any, *, as_json: bool) -> str:
    """What `certman reconfigure` changed and what happens next."""
    if as_json:
        return json.dumps(result.to_dict(), indent=2)
    diff = result.diff
    lines = [f"{result.name}: {diff.summary()}", *[f"  {c.describe()}" for c in diff.changes]]
    if diff.reissue:
        lines.append(
            "  no certificate ordered: the next renewal gets one with these settings "
            f"(`certman renew --force {result.name}` does it now)"
        )
    if result.backoff_cleared:
        lines.append("  backoff cleared: the next `certman renew` tries these settings")
    return "\n".join([*lines, *deploy_lines(result.deploy)])


def rehearsal_result(result: Any, *, as_json: bool) -> str:
    """A dry run of one certificate (``issuance.rehearsal.RehearsalResult``)."""
    if as_json:
        return json.dumps(result.to_dict(), indent=2)
    lines = [f"{result.name} ({', '.join(result.identifiers)}): {result.summary()}"]
    if result.serial:
        lines.append(f"  staging serial {result.serial}, valid until {encode_time(result.not_after)} (not stored)")
    lines += [f"  {line}" for line in result.reloaders]
    if result.reload_error is not None:
        lines.append(f"  reload would fail: {result.reload_error.message}")
    return "\n".join(lines)


def reconfigure_rehearsal(diff: Any, rehearsal: Any, *, as_json: bool) -> str:
    """`certman reconfigure --dry-run`: the changes it would record, and the rehearsal with them."""
    if as_json:
        return json.dumps({**diff.to_dict(), "recorded": False, "rehearsal": rehearsal.to_dict()}, indent=2)
    changes = [f"  {c.describe()}" for c in diff.changes]
    return "\n".join([f"would record: {diff.summary()}", *changes, rehearsal_result(rehearsal, as_json=False)])


def deploy_lines(deploy: Any) -> list[str]:
    """One line per reloader call and per verified endpoint (none when nothing was deployed)."""
    lines = [
        f"  reload:    {r.reloader} ({', '.join(r.names)}): " + ("ok" if r.error is None else f"FAILED: {r.error}")
        for r in deploy.reloads
    ]
    lines += [
        f"  verify:    {c.name} at {c.endpoint}: "
        + ("serves serial " + c.stored_serial if c.is_ok else f"FAILED: serves {c.served_serial or c.error}")
        for c in deploy.checks
    ]
    return lines


def verify_report(report: Any, *, as_json: bool) -> str:
    """The checks of ``certman verify``: one row per certificate and endpoint."""
    rows = [
        {
            "name": c.name,
            "endpoint": str(c.endpoint),
            "stored_serial": c.stored_serial,
            "served_serial": c.served_serial,
            "ok": c.is_ok,
            "error": c.error,
        }
        for c in report.checks
    ]
    rows += [
        {
            "name": n,
            "endpoint": None,
            "stored_serial": None,
            "served_serial": None,
            "ok": None,
            "error": "no endpoint configured",
        }
        for n in report.unchecked
    ]
    if as_json:
        return json.dumps(rows, indent=2)
    return table(
        ["NAME", "ENDPOINT", "STORED", "SERVED", "RESULT"],
        [
            [r["name"], r["endpoint"] or "-", r["stored_serial"] or "-", r["served_serial"] or "-", _verdict(r)]
            for r in rows
        ],
    )


def _verdict(row: Mapping[str, Any]) -> str:
    if row["ok"]:
        return "ok"
    if row["ok"] is None:
        return "unchecked (no endpoint)"
    return "MISMATCH" if row["served_serial"] else f"FAILED: {row['error']}"


def plugin_list(infos: list[Any], *, as_json: bool) -> str:
    if as_json:
        return json.dumps({"plugins": [dataclasses.asdict(i) for i in infos]}, indent=2)
    rows = [[i.kind.replace("_", " ").rstrip("s"), i.name, i.distribution, i.summary] for i in infos]
    return table(["KIND", "NAME", "FROM", "WHAT"], rows) + "\n\nsettings of one: certman plugins NAME"


def plugin_details(infos: list[Any], *, as_json: bool) -> str:
    if as_json:
        return json.dumps({"plugins": [dataclasses.asdict(i) for i in infos]}, indent=2)
    blocks = []
    for i in infos:
        rows = [
            [
                s.name + (" (secret)" if s.secret else ""),
                s.type,
                "required" if s.required else s.default or "",
                s.env or "",
                s.help,
            ]
            for s in i.settings
        ]
        body = table(["SETTING", "TYPE", "DEFAULT", "ENV", "HELP"], rows) if rows else "(no documented settings)"
        blocks.append(f"{i.name} ({i.kind.replace('_', ' ').rstrip('s')}, from {i.distribution}): {i.summary}\n{body}")
    secret_note = "secrets also read <ENV>_FILE or the option <setting>_file"
    return "\n\n".join(blocks) + f"\n\n{secret_note}"
