"""`certman remove NAME`"""

from __future__ import annotations

import json
from typing import Any

import click

from .completion import stored_names


@click.command("remove")
@click.argument("name", shell_complete=stored_names)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def command(obj: Any, name: str, as_json: bool) -> None:
    """Stop managing NAME: move it to the keystore's archive (nothing is deleted)."""
    from ..keystore import FileKeystore
    from ..lifecycle import remove

    settings = obj.settings()
    result = remove(FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout), name)
    if as_json:
        click.echo(json.dumps({"name": result.name, "archived_to": str(result.archived_to)}, indent=2))
    else:
        click.echo(f"removed {result.name}; its files are kept in {result.archived_to}")
