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
    from ..lifecycle import list_certificates
    from . import render as _render

    settings = obj.settings()
    keystore = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    click.echo(_render.certificate_list(list_certificates(keystore), as_json=as_json))
