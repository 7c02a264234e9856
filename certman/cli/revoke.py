"""`certman revoke NAME [--reason]`"""

from __future__ import annotations

import json
from typing import Any

import click

from .completion import stored_names

# Kept in step with certman.lifecycle.REVOCATION_REASONS; importing it would load the library on --help.
REASONS = ("unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation")


@click.command("revoke")
@click.argument("name", shell_complete=stored_names)
@click.option(
    "--reason",
    type=click.Choice(REASONS),
    default="unspecified",
    show_default=True,
    help="RFC 5280 reason sent to the CA.",
)
@click.option("--timeout", type=float, help="Give up on the CA after this many seconds (default 90).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def command(obj: Any, name: str, reason: str, timeout: float | None, as_json: bool) -> None:
    """Revoke NAME's live certificate; renewal then skips it until it is issued again.

    With a fleet store, under NAME's lease: the fleet's current version is revoked, and
    every host's renewal skips it after its next sync.
    """
    from ..keystore import FileKeystore
    from ..lifecycle import revoke

    settings = obj.settings(timeout=timeout)
    local = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    if settings.store:
        from ..fleet import operations
        from ..fleet.settings import open_store

        store = open_store(settings)
        try:
            result = operations.revoke(
                local, store, settings, name, reason=reason, timeout=settings.timeout, lease_ttl=settings.lease_ttl
            )
        finally:
            store.close()
    else:
        result = revoke(local, name, reason=reason, timeout=settings.timeout)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "name": result.name,
                    "serial": result.serial,
                    "reason": result.reason,
                    "revoked_at": result.revoked_at,
                    "signed_by": result.signed_by,
                },
                indent=2,
            )
        )
    else:
        click.echo(
            f"revoked {result.name} (serial {result.serial}, {result.reason}, "
            f"signed by the {result.signed_by}); it will not be renewed until you issue it again"
        )
