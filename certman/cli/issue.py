"""`certman issue NAME...`"""

from __future__ import annotations

from pathlib import Path

import click

from ..config import KEY_TYPES, SERVER_ALIASES
from . import CliContext


@click.command("issue")
@click.argument("names", nargs=-1, required=True)
@click.option("--server", help=f"ACME directory URL, or one of: {', '.join(SERVER_ALIASES)}.")
@click.option("--ca-bundle", type=click.Path(path_type=Path), help="CA certificates to trust for the ACME server's TLS.")
@click.option("--email", help="Contact address for the ACME account.")
@click.option("--agree-tos", is_flag=True, default=None, help="Agree to the CA's terms of service.")
@click.option("--key-type", type=click.Choice(KEY_TYPES), help="Certificate key type (default ecdsa-p256).")
@click.option("--solver", help="Challenge solver: standalone, webroot or dns-01 (overrides [[solver]] tables).")
@click.option("--dns-provider", help="DNS provider of the dns-01 solver, e.g. rfc2136 or exec "
                                     "(its settings: `certman plugins NAME`).")
@click.option("--http-address", help="Address the standalone HTTP-01 server binds (default: all).")
@click.option("--http-port", type=int, help="Port of the standalone HTTP-01 server (default 80).")
@click.option("--webroot", type=click.Path(path_type=Path), help="Document root for the webroot solver.")
@click.option("--name", "cert_name", help="Keystore name of the certificate (default: the first name).")
@click.option("--timeout", type=float, help="Give up on the CA after this many seconds (default 90).")
@click.option("--reload-cmd", "reload_cmds", multiple=True, metavar="JSON_ARGV",
              help='Run this argv (a JSON list, no shell) after storing and after every renewal, '
                   'e.g. \'["systemctl", "reload", "nginx"]\'. Repeatable.')
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def command(obj: CliContext, /, names: tuple[str, ...], cert_name: str | None, as_json: bool,
            reload_cmds: tuple[str, ...], **flags: object) -> None:
    """Get a certificate for NAMES, make it live in the keystore and run its reloaders."""
    import dataclasses

    from .. import _render
    from ..config import spec_from_settings
    from ..deploy import deploy_issued, reload_command_table
    from ..issuance import AccountSettings, issue
    from ..keystore import FileKeystore

    flags = {k: (str(v) if isinstance(v, Path) and k != "keystore" else v) for k, v in flags.items()}
    if flags.get("dns_provider") and flags.get("solver") is None:
        flags["solver"] = "dns-01"
    settings = obj.settings(**flags)
    spec = spec_from_settings(names, settings, name=cert_name, use_solver_tables=flags.get("solver") is None)
    if reload_cmds:
        spec = dataclasses.replace(spec, reloaders=tuple(reload_command_table(c) for c in reload_cmds))
    keystore = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    result = issue(spec, keystore, account=AccountSettings(settings.email, settings.agree_tos),
                   timeout=settings.timeout)
    click.echo(_render.issue_result(result, as_json=as_json))
    deploy_issued(keystore, spec, result.serial)
