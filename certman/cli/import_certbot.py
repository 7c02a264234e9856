"""`certman import certbot [--config-dir /etc/letsencrypt]`"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click


@click.group("import")
def command() -> None:
    """Take over certificates and accounts from another ACME client."""


@command.command("certbot")
@click.option(
    "--config-dir",
    type=click.Path(path_type=Path),
    default=Path("/etc/letsencrypt"),
    show_default=True,
    help="certbot's configuration directory.",
)
@click.option(
    "--ca-bundle",
    type=click.Path(path_type=Path),
    help="CA certificates to trust for the ACME server's TLS, stored in each imported spec.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def certbot(obj: Any, config_dir: Path, ca_bundle: Path | None, as_json: bool) -> None:
    """Import certbot's lineages (every version, renewal settings) and its ACME accounts.

    certbot's files are only read. Running it again imports only what is new.
    """
    from ..importers.certbot import import_certbot
    from ..keystore import FileKeystore

    settings = obj.settings()
    keystore = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    result = import_certbot(keystore, config_dir, ca_bundle=str(ca_bundle) if ca_bundle else None)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    for uri in result.accounts_imported:
        click.echo(f"imported account {uri}")
    for uri in result.accounts_unchanged:
        click.echo(f"unchanged account {uri}")
    for name, versions in result.certificates_imported.items():
        click.echo(f"imported {name}: version(s) {', '.join(versions)}")
    for name in result.certificates_unchanged:
        click.echo(f"unchanged {name}")
    for what, why in result.skipped.items():
        click.echo(f"skipped {what}: {why}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}")
    if not (
        result.accounts_imported
        or result.accounts_unchanged
        or result.certificates_imported
        or result.certificates_unchanged
        or result.skipped
    ):
        click.echo(f"nothing to import in {config_dir}")
