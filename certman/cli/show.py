"""`certman show NAME`"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

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
            f"  REVOKED:  serial {marker.serial} at {human_time(marker.revoked_at)} "
            f"({marker.reason}); not renewed until issued again"
        )
    spec = report.spec
    lines.append(f"  server:   {spec['server']}" + (f" (profile {spec['profile']})" if spec.get("profile") else ""))
    lines.append(f"  key:      {spec['key_type']}")
    lines.append(f"  solvers:  {', '.join(s['name'] for s in spec.get('solver', []))}")
    if spec.get("reloader"):
        lines.append(f"  reload:   {', '.join(str(r.get('name')) for r in spec['reloader'])}")
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


def _meta_columns(meta: VersionMeta | None) -> list[str]:
    from ..when import human_time

    if meta is None:
        return ["-"] * 4
    return [str(meta.serial), human_time(meta.not_before), human_time(meta.not_after), str(meta.issuer)]
