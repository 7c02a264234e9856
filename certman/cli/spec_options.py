"""The flags that set a certificate's settings, shared by `certman issue` and `certman reconfigure`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..config import KEY_TYPES, SERVER_ALIASES

if TYPE_CHECKING:
    from ..config import Settings
    from ..declaration.change import SpecChange
    from ..names import Identifier

F = TypeVar("F", bound=Callable[..., Any])

# The flags of these options that are spec fields but not run-wide settings.
NOT_SETTINGS = ("renew_before_days",)

_OPTIONS = [
    click.option("--server", help=f"ACME directory URL, or one of: {', '.join(SERVER_ALIASES)}."),
    click.option(
        "--ca-bundle", type=click.Path(path_type=Path), help="CA certificates to trust for the ACME server's TLS."
    ),
    click.option("--key-type", type=click.Choice(KEY_TYPES), help="Certificate key type (default ecdsa-p256)."),
    click.option(
        "--solver", help="Challenge solver: standalone, webroot, dns-01 or tls-alpn-01 (overrides [[solver]] tables)."
    ),
    click.option(
        "--dns-provider",
        help="DNS provider of the dns-01 solver, e.g. rfc2136 or exec (its settings: `certman plugins NAME`).",
    ),
    click.option("--http-address", help="Address the standalone HTTP-01 server binds (default: all)."),
    click.option("--http-port", type=int, help="Port of the standalone HTTP-01 server (default 80)."),
    click.option("--webroot", type=click.Path(path_type=Path), help="Document root for the webroot solver."),
    click.option("--tls-address", help="Address the tls-alpn-01 solver binds (default: all)."),
    click.option("--tls-port", type=int, help="Port of the tls-alpn-01 solver (default 443)."),
    click.option("--profile", help='ACME profile to request; must be listed in the CA\'s directory ("" clears it).'),
    click.option("--preferred-chain", help="Issuer CN of the chain to prefer when the CA offers several."),
    click.option(
        "--fallback-server",
        "fallback_servers",
        multiple=True,
        help="CA to try when --server fails (repeatable, in order; uses --ca-bundle).",
    ),
    click.option(
        "--reload-cmd",
        "reload_cmds",
        multiple=True,
        metavar="JSON_ARGV",
        help="Run this argv (a JSON list, no shell) after storing and after every renewal, "
        'e.g. \'["systemctl", "reload", "nginx"]\'. Repeatable.',
    ),
    click.option(
        "--reloader",
        "reloader_kinds",
        multiple=True,
        metavar="KIND",
        help="Reloader to run after storing: nginx, haproxy, caddy, traefik, command (`certman plugins`). "
        "Replaces a stored reloader of the same kind. Repeatable.",
    ),
    click.option(
        "--reloader-option",
        "reloader_options",
        multiple=True,
        metavar="[KIND.]KEY=VALUE",
        help="An option of the --reloader, e.g. verify=127.0.0.1:443 (KIND. when several are given). Repeatable.",
    ),
    click.option(
        "--renew-before-days",
        type=float,
        help="Renew this many days before expiry instead of the lifetime rule (0: the lifetime rule).",
    ),
]


def spec_options(command: F) -> F:
    """Add the options that set a certificate's settings to ``command``."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def settings_flags(flags: Mapping[str, Any]) -> dict[str, Any]:
    """``flags`` that are run-wide settings, paths as strings (``load_settings`` overrides)."""
    return {
        k: (str(v) if isinstance(v, Path) and k != "keystore" else v) for k, v in flags.items() if k not in NOT_SETTINGS
    }


def change_of(
    flags: Mapping[str, Any],
    settings: Settings,
    *,
    identifiers: tuple[Identifier, ...] | None = None,
    reload_cmds: tuple[str, ...] = (),
    reloader_kinds: tuple[str, ...] = (),
    reloader_options: tuple[str, ...] = (),
    remove_reloaders: tuple[str, ...] = (),
    fallback_servers: tuple[str, ...] = (),
) -> SpecChange:
    """The change the command line gives: only the flags present, their values as ``settings`` merged them."""
    from ..declaration.change import change_from_flags, reloader_tables

    if reloader_options and not reloader_kinds:
        raise click.UsageError("--reloader-option needs the --reloader it belongs to")
    reloaders = list(reloader_tables(reloader_kinds, reloader_options))
    if reload_cmds:
        # Deferred: a certificate without reloaders loads no proxy code.
        from ..deploy.batch import reload_command_table

        reloaders += [reload_command_table(c) for c in reload_cmds]
    given = {k: v for k, v in flags.items() if v is not None}
    return change_from_flags(
        given,
        settings,
        identifiers=identifiers,
        reloaders=reloaders,
        remove_reloaders=remove_reloaders,
        fallback_servers=fallback_servers,
    )
