"""`certman plugins [NAME]`"""

from __future__ import annotations

import click


@click.command("plugins")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(name: str | None, as_json: bool) -> None:
    """List solvers, DNS providers and reloaders, or show NAME's settings."""
    from ..errors import UsageError
    from ..plugins.catalog import catalog, find
    from . import render as _render

    if name is None:
        click.echo(_render.plugin_list(catalog(), as_json=as_json))
        return
    found = find(name)
    if not found:
        raise UsageError(f"no plugin named {name!r}", "run `certman plugins` to list them")
    click.echo(_render.plugin_details(found, as_json=as_json))
