"""`certman account show|register|update|rollover|deactivate`"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..config import SERVER_ALIASES


def _ca_options(func: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--server", help=f"ACME directory URL, or one of: {', '.join(SERVER_ALIASES)}.")
    @click.option(
        "--ca-bundle", type=click.Path(path_type=Path), help="CA certificates to trust for the ACME server's TLS."
    )
    @click.option("--timeout", type=float, help="Give up on the CA after this many seconds (default 90).")
    @click.option("--json", "as_json", is_flag=True, help="Print the account as JSON.")
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def _context(obj: Any, server: str | None, ca_bundle: Path | None, timeout: float | None) -> tuple[Any, Any, Any]:
    from ..ca.accounts import CAEndpoint
    from ..config import resolve_server
    from ..keystore import FileKeystore

    settings = obj.settings(server=server, ca_bundle=str(ca_bundle) if ca_bundle else None, timeout=timeout)
    ca = CAEndpoint(resolve_server(settings.server), settings.ca_bundle, settings.timeout)
    return settings, ca, FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)


def _on_account(settings: Any, ca: Any, keystore: Any, work: Callable[[Any], Any], *, changes: bool = True) -> Any:
    """``work(keystore)``; with a fleet store, on the fleet's account, under its lease if it
    ``changes`` it (docs/fleet.md)."""
    if not settings.store:
        return work(keystore)
    from ..fleet.operations import account_operation
    from ..fleet.settings import open_store

    store = open_store(settings)
    try:
        return account_operation(keystore, store, ca.directory_url, work, lease_ttl=settings.lease_ttl, changes=changes)
    finally:
        store.close()


def _echo(info: Any, as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2))
        return
    click.echo(
        f"{verb}account {info.uri}\n"
        f"  CA:         {info.directory_url}\n"
        f"  status:     {info.status or '(not asked)'}\n"
        f"  contact:    {', '.join(info.contact) or '-'}\n"
        f"  key:        {info.key_thumbprint} (JWK thumbprint)\n"
        f"  created:    {info.created_at or '-'}"
    )


@click.group("account")
def command() -> None:
    """Manage the ACME account kept for each CA.

    With a fleet store, the fleet's one account per CA, kept in the store; each command
    that changes it runs under that account's lease, so two hosts never change it at once.
    """


@command.command("show")
@_ca_options
@click.option("--offline", is_flag=True, help="Show the stored account without asking the CA.")
@click.pass_obj
def show(
    obj: Any, server: str | None, ca_bundle: Path | None, timeout: float | None, as_json: bool, offline: bool
) -> None:
    """Show the account and its status at the CA."""
    from ..ca.accounts import show_account

    settings, ca, keystore = _context(obj, server, ca_bundle, timeout)
    _echo(
        _on_account(settings, ca, keystore, lambda k: show_account(k, ca, ask_ca=not offline), changes=False),
        as_json,
        "",
    )


@command.command("register")
@_ca_options
@click.option("--email", help="Contact address for the account.")
@click.option("--agree-tos", is_flag=True, default=None, help="Agree to the CA's terms of service.")
@click.option("--eab-kid", help="External account binding key id from the CA.")
@click.option(
    "--eab-hmac-key-file",
    type=click.Path(path_type=Path),
    help="File holding the EAB HMAC key (or set CERTMAN_EAB_HMAC_KEY[_FILE]).",
)
@click.option("--new", is_flag=True, help="Replace the stored account: register a new one, archive the old.")
@click.pass_obj
def register(
    obj: Any,
    server: str | None,
    ca_bundle: Path | None,
    timeout: float | None,
    as_json: bool,
    email: str | None,
    agree_tos: bool | None,
    eab_kid: str | None,
    eab_hmac_key_file: Path | None,
    new: bool,
) -> None:
    """Register an account with the CA (with external account binding if it requires one).

    With --new, a stored account (one the CA forgot or that was deactivated elsewhere) is
    moved to the keystore's archive once the new account is registered.
    """
    from ..ca.accounts import AccountSettings, register_account
    from ..ca.eab import external_account

    settings, ca, keystore = _context(obj, server, ca_bundle, timeout)
    account = AccountSettings(
        email or settings.email, bool(agree_tos or settings.agree_tos), external_account(eab_kid, eab_hmac_key_file)
    )
    _echo(
        _on_account(settings, ca, keystore, lambda k: register_account(k, ca, account, new=new)), as_json, "registered "
    )


@command.command("update")
@_ca_options
@click.option(
    "--email", "emails", multiple=True, required=True, help="New contact address (repeat for several; '' removes all)."
)
@click.pass_obj
def update(
    obj: Any, server: str | None, ca_bundle: Path | None, timeout: float | None, as_json: bool, emails: tuple[str, ...]
) -> None:
    """Replace the account's contact addresses."""
    from ..ca.accounts import update_email

    settings, ca, keystore = _context(obj, server, ca_bundle, timeout)
    contacts = tuple(e for e in emails if e)
    _echo(_on_account(settings, ca, keystore, lambda k: update_email(k, ca, contacts)), as_json, "updated ")


@command.command("rollover")
@_ca_options
@click.pass_obj
def rollover(obj: Any, server: str | None, ca_bundle: Path | None, timeout: float | None, as_json: bool) -> None:
    """Replace the account key (RFC 8555 keyChange); the account and its URL stay."""
    from ..ca.accounts import rollover as roll

    settings, ca, keystore = _context(obj, server, ca_bundle, timeout)
    _echo(_on_account(settings, ca, keystore, lambda k: roll(k, ca)), as_json, "rolled over the key of ")


@command.command("deactivate")
@_ca_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def deactivate(
    obj: Any, server: str | None, ca_bundle: Path | None, timeout: float | None, as_json: bool, yes: bool
) -> None:
    """Deactivate the account at the CA for good, and archive it locally."""
    from ..ca.accounts import deactivate as deact
    from ..errors import UsageError

    settings, ca, keystore = _context(obj, server, ca_bundle, timeout)
    if not yes and not click.confirm(
        f"Deactivate the account at {ca.directory_url}? The CA cannot undo this", default=False
    ):
        raise UsageError("the account was not deactivated", "pass --yes to deactivate without the question")
    _echo(_on_account(settings, ca, keystore, lambda k: deact(k, ca)), as_json, "deactivated ")
