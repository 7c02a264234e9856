"""Human tables and JSON for the CLI. No logic beyond formatting."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..keystore.times import Clock, encode_time, utc_now
from ..when import days_left, human_date, human_time, humanize_times
from . import tables, terminal

if TYPE_CHECKING:
    from ..keystore.records import IndexEntry
    from ..keystore.state_records import RenewalState


def table(headers: list[str], rows: list[list[str]], styled: tuple[str, ...] = ()) -> str:
    """A table at its natural width; the ``styled`` columns hold status words."""
    return tables.simple(headers, rows, styled)


# How `list` gives way to a narrow terminal: detail first, then the second name column,
# until NAME, STATUS and DAYS LEFT are what is left.
_LIST_STEPS: list[tables.Step] = [
    tables.Drop("KEY TYPE"),
    tables.Drop("ISSUER"),
    tables.Squeeze("IDENTIFIERS"),
    tables.Drop("IDENTIFIERS"),
    tables.Squeeze("NAME"),
    tables.Drop("EXPIRES"),
]


def certificate_list(
    index: Mapping[str, IndexEntry],
    *,
    as_json: bool,
    clock: Clock = utc_now,
    width: int | None = None,
    decisions: Mapping[str, Any] | None = None,
) -> str:
    """``certman list``: JSON, or a table fitted to ``width`` columns (default: the terminal's).

    ``decisions`` (``lifecycle.list_decisions``) give the STATUS words renew would act on."""
    from .vocabulary import of_entry

    now = clock()
    names = sorted(index)
    if as_json:
        entries = [
            {
                "name": name,
                "identifiers": list(index[name].identifiers),
                "not_after": encode_time(index[name].not_after),
                "days_left": days_left(index[name].not_after, now),
                "issuer": index[name].issuer,
                "key_type": index[name].key_type,
                "serial": index[name].serial,
                "version": index[name].version,
            }
            for name in names
        ]
        return json.dumps({"certificates": entries}, indent=2)
    if not names:
        return "no certificates yet (see `certman issue --help`)"
    entries_ = [index[n] for n in names]
    expires = tables.Column("EXPIRES", tuple(human_time(e.not_after) for e in entries_))
    columns = [
        tables.Column("NAME", tuple(names)),
        tables.Column("STATUS", tuple(of_entry(index[n], now, (decisions or {})[n]) for n in names), styled=True),
        tables.Column("DAYS LEFT", tuple(str(days_left(e.not_after, now)) for e in entries_)),
        expires,
        tables.Column("IDENTIFIERS", tuple(",".join(e.identifiers) for e in entries_)),
        tables.Column("ISSUER", tuple(e.issuer or "-" for e in entries_)),
        tables.Column("KEY TYPE", tuple(e.key_type or "-" for e in entries_)),
    ]
    short = tables.Column("EXPIRES", tuple(human_date(e.not_after) for e in entries_))
    steps = [*_LIST_STEPS[:3], tables.Swap("EXPIRES", short), *_LIST_STEPS[3:]]
    return tables.render(columns, width or terminal.width(), steps)


def explanations(items: list[Any], width: int | None = None) -> str:
    """``certman explain``: per certificate its name and status word, then each sentence
    wrapped under it to ``width`` columns (default: the terminal's)."""
    from .vocabulary import of_decision

    blocks = []
    for item in items:
        word = of_decision(item.action, item.reason)
        lines = [f"{item.name}  {terminal.status(word)}"]
        for sentence in item.sentences:
            lines += terminal.wrap(humanize_times(sentence), columns=width)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def state_lines(state: RenewalState) -> list[str]:
    """``certman show``'s renewal state as labelled lines (none for a state never touched)."""
    rows: list[tuple[str, str]] = []
    if state.last_success or state.last_attempt:
        rows.append(("last success", human_time(state.last_success, "never")))
    if state.consecutive_failures:
        rows.append(
            (
                "failures",
                f"{state.consecutive_failures} in a row, last at {human_time(state.last_failure)}: "
                f"{state.last_error or 'no detail'}",
            )
        )
        rows.append(("next attempt", human_time(state.next_attempt, "any time")))
    if state.retry_after:
        rows.append(("retry after", f"{human_time(state.retry_after)} (the CA's Retry-After)"))
    ari = state.ari
    if ari is not None:
        if ari.window_start or ari.window_end:
            window = f"{human_time(ari.window_start)} to {human_time(ari.window_end)}, chosen {human_time(ari.chosen)}"
        else:
            window = "none offered by the CA" if ari.unsupported else "not fetched yet"
        rows.append(("ARI window", window + (f"; last fetch failed: {ari.last_error}" if ari.last_error else "")))
        rows.append(("ARI check", f"next after {human_time(ari.next_check, 'the next run')}"))
    deploy = state.deploy
    if deploy is not None:
        tried = human_time(deploy.attempted_at)
        serial = f"serial {deploy.serial} " if deploy.serial else ""
        if deploy.pending:
            rows.append(("deploy", f"{serial}pending since {tried}: {deploy.error or 'no detail'}"))
        else:
            rows.append(("deploy", f"{serial}done {tried}"))
    if not rows:
        return []
    label = max(len(k) for k, _ in rows) + 2
    return ["  state:", *(f"    {(k + ':').ljust(label)}{v}" for k, v in rows)]


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
            f"valid until {human_time(result.not_after)}",
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
        lines.append(f"  staging serial {result.serial}, valid until {human_time(result.not_after)} (not stored)")
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
        f"  reload:    {r.reloader} ({', '.join(r.names)}): "
        + ("ok" if r.error is None else f"FAILED{_only(r.failed, r.names)}: {r.error}")
        for r in deploy.reloads
    ]
    lines += [
        f"  verify:    {c.name} at {c.endpoint}: "
        + ("serves serial " + c.stored_serial if c.is_ok else f"FAILED: serves {c.served_serial or c.error}")
        for c in deploy.checks
    ]
    return lines


def _only(failed: tuple[str, ...], names: tuple[str, ...]) -> str:
    """ " for b" when a reloader call failed for some of its certificates only."""
    return f" for {', '.join(failed)}" if failed and set(failed) != set(names) else ""


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
        styled=("RESULT",),
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
