"""`certman plugins [NAME]`"""

from __future__ import annotations

import click


@click.command("plugins")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def command(name: str | None, as_json: bool) -> None:
    """List solvers, DNS providers and reloaders, or show NAME's settings."""
    from ..plugins.catalog import catalog, find
    from . import render as _render

    if name is None:
        click.echo(_render.plugin_list(catalog(), as_json=as_json))
        return
    click.echo(_render.plugin_details(find(name), as_json=as_json))
