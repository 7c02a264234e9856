"""`certman notify --test`: send a test notification to every configured URL."""

from __future__ import annotations

import click

from . import CliContext


@click.command("notify")
@click.option("--test", "test", is_flag=True, required=True, help="Send a test message to every configured URL.")
@click.pass_obj
def command(obj: CliContext, /, test: bool) -> None:
    """Send a test notification (URLs from notify_file or CERTMAN_NOTIFY_URLS).

    `certman renew` notifies a failed renewal, or a certificate with fewer than
    notify_days left that is not renewing, once per problem and once on recovery.
    """
    from ..notify import send_test

    for url in send_test(obj.settings()):
        click.echo(f"sent to {url}")
