"""`certman store init|import|status|rekey`: the fleet's shared store (docs/fleet.md)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import CliContext


def _store_option(func: Callable[..., Any]) -> Callable[..., Any]:
    def remember(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            ctx.find_object(CliContext).overrides["store"] = value  # type: ignore[union-attr]

    @click.option(
        "--store",
        expose_value=False,
        callback=remember,
        help="libpq connection string of the fleet store (same as certman --store; env CERTMAN_STORE).",
    )
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


@click.group("store")
def command() -> None:
    """Set up and inspect the fleet store that several hosts share (PostgreSQL)."""


@command.command("init")
@_store_option
@click.option(
    "--new-key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a fresh 32-byte fleet key to this file (0600) and bind the store to it.",
)
@click.pass_obj
def init(obj: CliContext, /, new_key: Path | None) -> None:
    """Create or migrate the store's schema (idempotent) and bind it to the fleet key."""
    from ..fleet.admin import initialise
    from ..fleet.connection import psycopg_module
    from ..fleet.fleet_key import FleetKey
    from ..fleet.settings import fleet_settings, load_key

    fleet = fleet_settings(obj.settings())
    psycopg_module()
    key = FleetKey.create(new_key) if new_key is not None else load_key(fleet)
    try:
        result = initialise(fleet.conninfo, key)
    except BaseException:
        if new_key is not None:
            new_key.unlink(missing_ok=True)  # a key no store was bound to would only mislead
        raise
    change = (
        f"schema {result.schema_before} -> {result.schema_after}"
        if result.schema_before != result.schema_after
        else f"schema {result.schema_after} (current)"
    )
    bound = "bound to" if result.key_bound else "matches"
    click.echo(f"fleet store {result.location}: {change}; fleet key {key.path} {bound} it")
    if new_key is not None:
        click.echo(f"copy {key.path} (mode 0600) to every host and set store_key_file to it there")


@command.command("import")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def import_(obj: CliContext, /, as_json: bool) -> None:
    """Upload the local keystore's accounts and certificates the store does not have yet."""
    from ..fleet.settings import open_store
    from ..fleet.transfer import import_keystore
    from ..keystore import FileKeystore

    settings = obj.settings()
    store = open_store(settings)
    local = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    try:
        result = import_keystore(local, store)
    finally:
        store.close()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "store": store.location,
                    "accounts": result.accounts,
                    "accounts_kept": result.accounts_kept,
                    "certificates": [{"name": n, "version": v} for n, v in result.certificates],
                    "certificates_kept": result.certificates_kept,
                },
                indent=2,
            )
        )
        return
    for ca in result.accounts:
        click.echo(f"account {ca}: uploaded")
    for ca in result.accounts_kept:
        click.echo(f"account {ca}: the store has one already (kept)")
    for name, version in result.certificates:
        click.echo(f"{name}: uploaded as version {version}")
    for name in result.certificates_kept:
        click.echo(f"{name}: the store has it already (kept)")
    total = len(result.accounts) + len(result.certificates)
    click.echo(f"imported {total} item(s) into {store.location}")


@command.command("status")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_obj
def status(obj: CliContext, /, as_json: bool) -> None:
    """Each certificate's version, its lease holder and expiry, and which host installed which version."""
    from ..fleet.admin import status as store_status
    from ..fleet.connection import psycopg_module
    from ..fleet.settings import fleet_settings
    from ..keystore.times import encode_time

    fleet = fleet_settings(obj.settings())
    psycopg_module()
    rows = store_status(fleet.conninfo)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": r.name,
                        "version": r.version,
                        "fence": r.fence,
                        "lease": None
                        if r.lease_holder is None
                        else {
                            "holder": r.lease_holder,
                            "token": r.lease_token,
                            "expires_at": encode_time(r.lease_expires_at),
                            "held": r.lease_held,
                        },
                        "installs": r.installs,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        click.echo("the fleet store has no certificates (see `certman store import`)")
        return
    for r in rows:
        lease = "-"
        if r.lease_holder is not None:
            until = encode_time(r.lease_expires_at)
            lease = f"{r.lease_holder} token {r.lease_token} " + (f"until {until}" if r.lease_held else "(expired)")
        hosts = ", ".join(f"{h}={v}" for h, v in sorted(r.installs.items())) or "-"
        click.echo(f"{r.name}\n  version: {r.version or '-'} (fence {r.fence})\n  lease:   {lease}\n  hosts:   {hosts}")


@command.command("rekey")
@_store_option
@click.option(
    "--new-key",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Write the new 32-byte fleet key here (0600); the old one is store_key_file.",
)
@click.pass_obj
def rekey(obj: CliContext, /, new_key: Path) -> None:
    """Re-seal every private key in the store under a new fleet key, in one transaction."""
    from ..fleet.admin import rekey as rekey_store
    from ..fleet.connection import psycopg_module
    from ..fleet.fleet_key import FleetKey
    from ..fleet.settings import fleet_settings, load_key

    fleet = fleet_settings(obj.settings())
    psycopg_module()
    old = load_key(fleet)
    new = FleetKey.create(new_key)
    try:
        count = rekey_store(fleet.conninfo, old, new)
    except BaseException:
        new_key.unlink(missing_ok=True)  # the store still uses the old key
        raise
    click.echo(f"re-sealed {count} key(s) in {_shown(fleet.conninfo)}")
    click.echo(f"copy {new.path} (mode 0600) to every host and point store_key_file at it; {old.path} no longer opens")


def _shown(conninfo: str) -> str:
    from ..fleet.conninfo import shown

    return shown(conninfo)
