"""`certman sync [NAME...]`: install the fleet store's newer versions here, then reload."""

from __future__ import annotations

import json

import click

from . import CliContext


@click.command("sync")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with a result per certificate.")
@click.pass_obj
def command(obj: CliContext, /, names: tuple[str, ...], as_json: bool) -> None:
    """Pull newer certificates from the fleet store into the local keystore and reload; never orders.

    Exit status: 0 when every certificate is current, 7 when one failed, 8 when the
    store cannot be reached (the local certificates are untouched and still served).
    """
    from ..fleet.settings import open_store
    from ..fleet.sync import exit_code, sync
    from ..keystore import FileKeystore

    settings = obj.settings()
    store = open_store(settings)
    local = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    try:
        results = sync(local, store, settings, names=names)
    finally:
        store.close()
    if as_json:
        rows = [
            {"name": r.name, "action": r.action, "version": r.version, "serial": r.serial, "error": r.error}
            for r in results
        ]
        click.echo(json.dumps({"store": store.location, "certificates": rows}, indent=2))
    else:
        for r in results:
            click.echo(f"{r.name}: {r.action} (store version {r.version or '-'}, serial {r.serial or '-'})")
    for r in results:
        if r.error:
            click.echo(f"certman: {r.name}: {r.error}", err=True)
            if r.hint:
                click.echo(f"hint: {r.hint}", err=True)
    if exit_code(results):
        click.get_current_context().exit(exit_code(results))
