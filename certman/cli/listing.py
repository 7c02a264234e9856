"""`certman list`"""

from __future__ import annotations

import click

from . import CliContext


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the certificates as JSON.")
@click.pass_obj
def command(obj: CliContext, /, as_json: bool) -> None:
    """Show every certificate in the keystore."""
    from ..keystore import FileKeystore
    from ..keystore.times import utc_now
    from ..lifecycle import list_certificates, list_decisions
    from . import render as _render

    settings = obj.settings()
    keystore = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    index = list_certificates(keystore)
    now = utc_now()
    if as_json:
        click.echo(_render.certificate_list(index, as_json=True, clock=lambda: now))
        return
    decisions = list_decisions(keystore, index, settings, now)
    click.echo(_render.certificate_list(index, as_json=False, clock=lambda: now, decisions=decisions))
