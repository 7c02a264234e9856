"""`certman verify [NAME]`"""

from __future__ import annotations

import click

from . import CliContext, echo_json
from .completion import stored_names


@click.command("verify")
@click.argument("name", required=False, shell_complete=stored_names)
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="HOST:PORT",
    help="Where the proxy listens (repeatable; [SNI@]HOST:PORT). "
    "Default: the verify option of the certificate's reloaders.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to keep retrying each endpoint until it serves the stored leaf.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.pass_obj
def command(obj: CliContext, name: str | None, endpoints: tuple[str, ...], timeout: float, as_json: bool) -> None:
    """Check over TLS with SNI that each proxy serves the stored certificate."""
    from ..deploy.served import Endpoint
    from ..deploy.verify import verify_keystore
    from ..keystore import FileKeystore
    from . import render as _render

    settings = obj.settings()
    keystore = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    report = verify_keystore(
        keystore, [name] if name else [], endpoints=[Endpoint.parse(e) for e in endpoints], timeout=timeout
    )
    (echo_json if as_json else click.echo)(_render.verify_report(report, as_json=as_json))
    report.raise_for_failures()
