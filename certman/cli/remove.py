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
    """Stop managing NAME: move it to the keystore's archive (nothing is deleted).

    With a fleet store, under NAME's lease: archived in the store too, and on every
    host that installed it at its next sync.
    """
    from ..keystore import FileKeystore
    from ..lifecycle import remove

    settings = obj.settings()
    local = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    if settings.store:
        from ..fleet import operations
        from ..fleet.settings import open_store

        store = open_store(settings)
        try:
            result = operations.remove(local, store, name, lease_ttl=settings.lease_ttl)
        finally:
            store.close()
    else:
        result = remove(local, name)
    if as_json:
        click.echo(json.dumps({"name": result.name, "archived_to": str(result.archived_to)}, indent=2))
    else:
        click.echo(f"removed {result.name}; its files are kept in {result.archived_to}")
