"""`certman show NAME`"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from . import CliContext
from .completion import stored_names

if TYPE_CHECKING:
    from ..keystore.records import VersionMeta


@click.command("show")
@click.argument("name", shell_complete=stored_names)
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
@click.pass_obj
def command(obj: CliContext, /, name: str, as_json: bool) -> None:
    """Show a certificate's identifiers, versions, spec, state and revocation."""
    from ..keystore import FileKeystore
    from ..keystore.times import decode_optional_time
    from ..lifecycle import describe
    from ..when import human_time, humanize_times
    from . import render as _render

    settings = obj.settings()
    report = describe(FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout), name, settings=settings)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    lines = [
        f"{report.name}: {', '.join(report.identifiers)}",
        f"  live:     {report.live_path} -> version {report.live_version or '-'}",
    ]
    if report.revocation:
        marker = report.revocation
        lines.append(
            f"  REVOKED:  serial {marker.serial} at {human_time(marker.revoked_at, 'an unknown time')} "
            f"({marker.reason}); not renewed until issued again"
        )
    lines += _spec_lines(report.spec)
    if report.next_renewal:
        renewal = report.next_renewal
        when = human_time(
            decode_optional_time(renewal["at"]), "now" if renewal["action"] != "skip" else "not scheduled"
        )
        lines.append(f"  renewal:  {when} ({humanize_times(renewal['reason'])})")
        if renewal.get("declaration"):
            lines.append(f"  declared: {renewal['declaration']['summary']} (certman.toml differs from the record)")
    lines += _render.state_lines(report.state)
    rows = [[("* " if v.is_live else "  ") + v.version, *_meta_columns(v.meta)] for v in report.versions]
    lines.append("")
    lines.append(_render.table(["VERSION", "SERIAL", "NOT BEFORE", "NOT AFTER", "ISSUER"], rows))
    click.echo("\n".join(lines))


def _spec_lines(spec: Mapping[str, Any]) -> list[str]:
    """The recorded settings as labelled lines: plain words and lists, never a Python repr.

    Plugin options are left out: ``show`` is for the eye, ``show --json`` has them all."""
    rows = [("server", str(spec["server"]) + (f" (profile {spec['profile']})" if spec.get("profile") else ""))]
    if spec.get("fallback"):
        rows.append(("fallback", ", ".join(str(f.get("server", "-")) for f in spec["fallback"])))
    if spec.get("ca_bundle"):
        rows.append(("trust", str(spec["ca_bundle"])))
    if spec.get("preferred_chain"):
        rows.append(("chain", f"preferred {spec['preferred_chain']}"))
    rows.append(("key", str(spec["key_type"])))
    rows.append(("solvers", ", ".join(_solver_word(s) for s in spec.get("solver", [])) or "-"))
    if spec.get("reloader"):
        rows.append(("reload", ", ".join(str(r.get("name") or "-") for r in spec["reloader"])))
    if spec.get("renew_before_days") is not None:
        rows.append(("renew at", f"{spec['renew_before_days']:g} days before expiry"))
    return [f"  {(label + ':').ljust(10)}{value}" for label, value in rows]


def _solver_word(solver: Mapping[str, Any]) -> str:
    match = solver.get("match")
    return str(solver["name"]) + (f" for {', '.join(str(m) for m in match)}" if match else "")


def _meta_columns(meta: VersionMeta | None) -> list[str]:
    from ..when import human_time

    if meta is None:
        return ["-"] * 4
    return [meta.serial or "-", human_time(meta.not_before), human_time(meta.not_after), meta.issuer or "-"]
