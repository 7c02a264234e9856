"""`certman issue NAME...`"""

from __future__ import annotations

from pathlib import Path

import click
from msgspec import structs

from . import CliContext, echo_json
from .spec_options import change_of, settings_flags, spec_options


@click.command("issue")
@click.argument("names", nargs=-1, required=True)
@spec_options
@click.option("--email", help="Contact address for the ACME account.")
@click.option("--agree-tos", is_flag=True, default=None, help="Agree to the CA's terms of service.")
@click.option("--name", "cert_name", help="Keystore name of the certificate (default: the first name).")
@click.option("--timeout", type=float, help="Give up on the CA after this many seconds (default 90).")
@click.option("--eab-kid", help="External account binding key id, for registering with a CA that requires it.")
@click.option(
    "--eab-hmac-key-file",
    type=click.Path(path_type=Path),
    help="File holding the EAB HMAC key (or set CERTMAN_EAB_HMAC_KEY[_FILE]).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Rehearse: solvers, order and validation (finalize only at a staging twin); store and reload nothing.",
)
@click.option("--dry-run-server", help="Staging CA a dry run finalizes at (default: the CA's known twin).")
@click.pass_obj
def command(
    obj: CliContext,
    /,
    names: tuple[str, ...],
    cert_name: str | None,
    as_json: bool,
    fallback_servers: tuple[str, ...],
    eab_kid: str | None,
    eab_hmac_key_file: Path | None,
    reload_cmds: tuple[str, ...],
    reloader_kinds: tuple[str, ...],
    reloader_options: tuple[str, ...],
    dry_run: bool,
    **flags: object,
) -> None:
    """Get a certificate for NAMES, make it live in the keystore and run its reloaders.

    For a certificate already in the keystore, every stored setting not given here is
    kept (solver, reloaders, profile, renew window...); the output says what changed.
    """
    from ..ca.accounts import AccountSettings
    from ..ca.eab import external_account
    from ..config import spec_from_settings
    from ..declaration.change import apply_change
    from ..declaration.reconfigure import check_not_declared, spec_to_issue
    from ..issuance.issue import issue
    from ..keystore import FileKeystore
    from . import render as _render

    overrides = settings_flags(flags)
    if overrides.get("dns_provider") and overrides.get("solver") is None:
        overrides["solver"] = "dns-01"
    settings = obj.settings(**overrides)
    fresh = spec_from_settings(names, settings, name=cert_name, use_solver_tables=overrides.get("solver") is None)
    check_not_declared(fresh.name, settings, obj.config_file())
    change = change_of(
        flags,
        settings,
        identifiers=fresh.identifiers,
        reload_cmds=reload_cmds,
        reloader_kinds=reloader_kinds,
        reloader_options=reloader_options,
        fallback_servers=fallback_servers,
    )
    keystore = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    # A new certificate's solver is the one the settings chose, which the flags already shaped.
    new = apply_change(fresh, structs.replace(change, solver_options=None))
    spec, changes = spec_to_issue(keystore, new, change)
    account = AccountSettings(settings.email, settings.agree_tos, external_account(eab_kid, eab_hmac_key_file))
    if dry_run:
        from ..issuance.rehearsal import rehearse

        rehearsal = rehearse(
            spec, keystore, account=account, dry_run_server=settings.dry_run_server, timeout=settings.timeout
        )
        click.echo(_render.rehearsal_result(rehearsal, as_json=as_json))
        rehearsal.raise_for_deploy()
        return
    result = issue(spec, keystore, account=account, timeout=settings.timeout)
    (echo_json if as_json else click.echo)(_render.issue_result(result, as_json=as_json, changes=changes))
    result.raise_for_deploy()
