"""`certman show NAME`"""

from __future__ import annotations

import json

import click

from . import CliContext


@click.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
@click.pass_obj
def command(obj: CliContext, /, name: str, as_json: bool) -> None:
    """Show a certificate's identifiers, versions, spec, state and revocation."""
    from ..keystore import FileKeystore
    from ..lifecycle import describe
    from . import render as _render

    settings = obj.settings()
    report = describe(FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout), name)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    lines = [
        f"{report.name}: {', '.join(report.identifiers)}",
        f"  live:     {report.live_path} -> version {report.live_version or '-'}",
    ]
    if report.revocation:
        lines.append(
            f"  REVOKED:  serial {report.revocation.get('serial')} at {report.revocation.get('revoked_at')} "
            f"({report.revocation.get('reason')}); not renewed until issued again"
        )
    spec = report.spec
    lines.append(f"  server:   {spec['server']}" + (f" (profile {spec['profile']})" if spec.get("profile") else ""))
    lines.append(f"  key:      {spec['key_type']}")
    lines.append(f"  solvers:  {', '.join(s['name'] for s in spec.get('solver', []))}")
    if spec.get("reloader"):
        lines.append(f"  reload:   {', '.join(str(r.get('name')) for r in spec['reloader'])}")
    if report.next_renewal:
        renewal = report.next_renewal
        when = renewal["at"] or ("now" if renewal["action"] != "skip" else "not scheduled")
        lines.append(f"  renewal:  {when} ({renewal['reason']})")
    if report.state:
        lines.append("  state:    " + ", ".join(f"{k}={v}" for k, v in sorted(report.state.items())))
    rows = [
        [
            ("* " if v.is_live else "  ") + v.version,
            str(v.meta.get("serial", "-")),
            str(v.meta.get("not_before", "-")),
            str(v.meta.get("not_after", "-")),
            str(v.meta.get("issuer", "-")),
        ]
        for v in report.versions
    ]
    lines.append("")
    lines.append(_render.table(["VERSION", "SERIAL", "NOT BEFORE", "NOT AFTER", "ISSUER"], rows))
    click.echo("\n".join(lines))
