"""`certman reconfigure NAME`"""

from __future__ import annotations

import click

from . import CliContext, echo_json
from .spec_options import change_of, settings_flags, spec_options


@click.command("reconfigure")
@click.argument("name")
@spec_options
@click.option(
    "--remove-reloader",
    "remove_reloaders",
    multiple=True,
    metavar="KIND",
    help="Stop running the stored reloader of this kind (nginx, command...). Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Rehearse an issuance with the new settings (as `certman issue --dry-run`); record nothing.",
)
@click.option("--dry-run-server", help="Staging CA a dry run finalizes at (default: the CA's known twin).")
@click.pass_obj
def command(
    obj: CliContext,
    /,
    name: str,
    as_json: bool,
    fallback_servers: tuple[str, ...],
    reload_cmds: tuple[str, ...],
    reloader_kinds: tuple[str, ...],
    reloader_options: tuple[str, ...],
    remove_reloaders: tuple[str, ...],
    dry_run: bool,
    **flags: object,
) -> None:
    """Change the stored settings of certificate NAME without ordering a certificate.

    Settings not given are kept. They are checked first (nothing is written if one is
    bad), the backoff is cleared so the next `certman renew` tries them, and the live
    certificate is redeployed if the reloaders changed. A change that needs a new
    certificate (CA, key type, profile, preferred chain) takes effect at the next renewal.
    With --dry-run, an issuance with the new settings is rehearsed and nothing is recorded.
    With a fleet store, under NAME's lease: the settings that identify the certificate at
    the CA go to the store too, and whichever host renews it next uses them.
    """
    from ..declaration.reconfigure import plan_reconfigure, write_reconfiguration
    from ..keystore import FileKeystore
    from . import render as _render

    overrides = settings_flags(flags)
    if overrides.get("dns_provider") and overrides.get("solver") is None:
        overrides["solver"] = "dns-01"
    settings = obj.settings(**overrides)
    change = change_of(
        flags,
        settings,
        reload_cmds=reload_cmds,
        reloader_kinds=reloader_kinds,
        reloader_options=reloader_options,
        remove_reloaders=remove_reloaders,
        fallback_servers=fallback_servers,
    )
    keystore = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    # Computed, checked, then written: `--dry-run` rehearses the plan instead of writing it.
    if dry_run or not settings.store:
        plan = plan_reconfigure(keystore, name, change, settings=settings, config_file=obj.config_file())
    if dry_run:
        from ..ca.accounts import AccountSettings
        from ..issuance.rehearsal import rehearse

        account = AccountSettings(settings.email, settings.agree_tos)
        rehearsal = rehearse(
            plan.after, keystore, account=account, dry_run_server=settings.dry_run_server, timeout=settings.timeout
        )
        (echo_json if as_json else click.echo)(_render.reconfigure_rehearsal(plan.diff, rehearsal, as_json=as_json))
        rehearsal.raise_for_deploy()
        return
    if settings.store:
        from ..fleet import operations
        from ..fleet.settings import open_store

        store = open_store(settings)
        try:
            result = operations.reconfigure(
                keystore,
                store,
                settings,
                name,
                change,
                config_file=obj.config_file(),
                lease_ttl=settings.lease_ttl,
            )
        finally:
            store.close()
    else:
        result = write_reconfiguration(keystore, plan)
    (echo_json if as_json else click.echo)(_render.reconfigure_result(result, as_json=as_json))
    result.raise_for_deploy()
