"""`certman issue NAME...`"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from ..config import KEY_TYPES, SERVER_ALIASES
from . import CliContext, echo_json


@click.command("issue")
@click.argument("names", nargs=-1, required=True)
@click.option("--server", help=f"ACME directory URL, or one of: {', '.join(SERVER_ALIASES)}.")
@click.option(
    "--ca-bundle", type=click.Path(path_type=Path), help="CA certificates to trust for the ACME server's TLS."
)
@click.option("--email", help="Contact address for the ACME account.")
@click.option("--agree-tos", is_flag=True, default=None, help="Agree to the CA's terms of service.")
@click.option("--key-type", type=click.Choice(KEY_TYPES), help="Certificate key type (default ecdsa-p256).")
@click.option(
    "--solver", help="Challenge solver: standalone, webroot, dns-01 or tls-alpn-01 (overrides [[solver]] tables)."
)
@click.option(
    "--dns-provider",
    help="DNS provider of the dns-01 solver, e.g. rfc2136 or exec (its settings: `certman plugins NAME`).",
)
@click.option("--http-address", help="Address the standalone HTTP-01 server binds (default: all).")
@click.option("--http-port", type=int, help="Port of the standalone HTTP-01 server (default 80).")
@click.option("--webroot", type=click.Path(path_type=Path), help="Document root for the webroot solver.")
@click.option("--tls-address", help="Address the tls-alpn-01 solver binds (default: all).")
@click.option("--tls-port", type=int, help="Port of the tls-alpn-01 solver (default 443).")
@click.option("--name", "cert_name", help="Keystore name of the certificate (default: the first name).")
@click.option("--timeout", type=float, help="Give up on the CA after this many seconds (default 90).")
@click.option("--profile", help="ACME profile to request; must be listed in the CA's directory.")
@click.option("--preferred-chain", help="Issuer CN of the chain to prefer when the CA offers several.")
@click.option(
    "--fallback-server",
    "fallback_servers",
    multiple=True,
    help="CA to try when --server fails (repeatable, in order; uses --ca-bundle).",
)
@click.option("--eab-kid", help="External account binding key id, for registering with a CA that requires it.")
@click.option(
    "--eab-hmac-key-file",
    type=click.Path(path_type=Path),
    help="File holding the EAB HMAC key (or set CERTMAN_EAB_HMAC_KEY[_FILE]).",
)
@click.option(
    "--reload-cmd",
    "reload_cmds",
    multiple=True,
    metavar="JSON_ARGV",
    help="Run this argv (a JSON list, no shell) after storing and after every renewal, "
    'e.g. \'["systemctl", "reload", "nginx"]\'. Repeatable.',
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
    dry_run: bool,
    **flags: object,
) -> None:
    """Get a certificate for NAMES, make it live in the keystore and run its reloaders."""
    from ..ca.accounts import AccountSettings
    from ..ca.eab import external_account
    from ..config import spec_from_settings
    from ..issuance.issue import issue
    from ..keystore import FileKeystore
    from . import render as _render

    flags = {k: (str(v) if isinstance(v, Path) and k != "keystore" else v) for k, v in flags.items()}
    if flags.get("dns_provider") and flags.get("solver") is None:
        flags["solver"] = "dns-01"
    settings = obj.settings(**flags)
    spec = spec_from_settings(names, settings, name=cert_name, use_solver_tables=flags.get("solver") is None)
    if reload_cmds:
        from ..deploy.batch import reload_command_table

        spec = replace(spec, reloaders=tuple(reload_command_table(c) for c in reload_cmds))
    if fallback_servers:
        spec = replace(
            spec,
            fallback=tuple(
                {"server": s, **({"ca_bundle": spec.ca_bundle} if spec.ca_bundle else {})} for s in fallback_servers
            ),
        )
    keystore = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
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
    (echo_json if as_json else click.echo)(_render.issue_result(result, as_json=as_json))
    result.raise_for_deploy()
