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
    from . import render as _render

    settings = obj.settings()
    keystore = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    if keystore.crashed():
        # A run killed between moving live/ and the index leaves the index stale; the
        # listing comes from the index, so repair it first.
        keystore.repair_index()
    click.echo(_render.certificate_list(keystore.read_index(), as_json=as_json))
