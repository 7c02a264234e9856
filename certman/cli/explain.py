"""`certman explain [NAME...]`"""

from __future__ import annotations

import click

from . import CliContext
from .completion import stored_names


@click.command("explain")
@click.argument("names", nargs=-1, shell_complete=stored_names)
@click.option("--json", "as_json", is_flag=True, help="Print the explanations as JSON.")
@click.pass_obj
def command(obj: CliContext, /, names: tuple[str, ...], as_json: bool) -> None:
    """Say why and when each certificate renews (ARI window, lifetime rule, backoff)."""
    import json

    from ..keystore import FileKeystore
    from ..renewal.explain import explain

    settings = obj.settings()
    explanations = explain(
        FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout), names, settings=settings
    )
    if as_json:
        click.echo(json.dumps({"certificates": [e.to_dict() for e in explanations]}, indent=2))
        return
    if not explanations:
        click.echo("no certificates yet (see `certman issue --help`)")
    from .render import explanations as _explanations

    click.echo(_explanations(explanations))
