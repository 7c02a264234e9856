"""`certman challenge-server --listen ADDR:PORT`: answer the fleet's HTTP-01 challenges here."""

from __future__ import annotations

import time

import click

from . import CliContext
from ._termination import Terminated


@click.command("challenge-server")
@click.option(
    "--listen",
    required=True,
    metavar="ADDR:PORT",
    help="Where to listen, e.g. 127.0.0.1:8402 behind the proxy, or :80 for every address.",
)
@click.pass_obj
def command(obj: CliContext, /, listen: str) -> None:
    """Answer /.well-known/acme-challenge/ with the HTTP-01 tokens in flight in the fleet store.

    Runs until stopped (SIGTERM, Ctrl-C), which is a clean exit 0. Every host of a
    fleet runs one (`certman timer install --challenge-server` writes its systemd
    unit); the proxy forwards /.well-known/acme-challenge/ to it. Exit status: 2 for
    a bad --listen or no store, 3 when the store's schema is old, 5 when the port is
    taken, 8 when the store cannot be reached at start.
    """
    from ..fleet.challenge_server import parse_listen, start
    from ..fleet.settings import fleet_settings

    fleet = fleet_settings(obj.settings())
    address, port = parse_listen(listen)
    server = None
    try:
        server = start(fleet.conninfo, address, port)
        click.echo(f"certman challenge-server: answering HTTP-01 on {server.where}", err=True)
        while True:
            time.sleep(3600)
    except (Terminated, KeyboardInterrupt):
        pass  # asked to stop, also while starting: a clean exit
    finally:
        if server is not None:
            server.stop()
