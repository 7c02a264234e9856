"""`certman timer install|uninstall`: run `certman renew` from systemd or cron."""

from __future__ import annotations

from pathlib import Path

import click

from . import CliContext


@click.group("timer")
def command() -> None:
    """Install or remove the twice-daily `certman renew` job."""


_USER_HELP = "Systemd user units in ~/.config/systemd/user (systemctl --user), for a keystore of your own."


@command.command("install")
@click.option("--cron", is_flag=True, help="Install /etc/cron.d/certman instead of a systemd timer.")
@click.option("--user", is_flag=True, help=_USER_HELP)
@click.option("--print", "show", is_flag=True, help="Print what would be written; change nothing.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/"),
    show_default=True,
    help="Write below this directory (systemctl runs only when it is /).",
)
@click.option(
    "--challenge-server",
    "challenge_server",
    metavar="ADDR:PORT",
    is_flag=False,
    flag_value="127.0.0.1:8402",
    help="Also run `certman challenge-server` as a service, for HTTP-01 in a fleet (alone: 127.0.0.1:8402).",
)
@click.pass_obj
def install_command(
    obj: CliContext, /, cron: bool, user: bool, show: bool, root: Path, challenge_server: str | None
) -> None:
    """Write and enable certman-renew.service and certman-renew.timer (or the cron line).

    With --challenge-server, also certman-challenge-server.service, which every fleet
    host runs so that any of them answers the CA's HTTP-01 requests (docs/fleet.md).
    """
    from ..fleet.challenge_server import parse_listen
    from ..renewal import timer

    settings = obj.settings()
    if challenge_server is not None:
        parse_listen(challenge_server)
    # The unit runs from /: a relative --config would name another file there.
    config = obj.config_path.absolute() if obj.config_path else None
    installed = timer.install(
        root,
        cron=cron,
        user=user,
        keystore=settings.keystore.absolute(),
        config=config,
        dry_run=show,
        challenge_server=challenge_server,
    )
    for unit in installed.files:
        click.echo(f"# {unit.path}\n{unit.content}" if show else f"wrote {unit.path}")
    for path in installed.removed:
        click.echo(f"removed {path} (renew runs from one schedule only)")
    if installed.note:
        click.echo(installed.note)


@command.command("uninstall")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/"),
    show_default=True,
    help="Remove below this directory (systemctl runs only when it is /).",
)
@click.option("--user", is_flag=True, help="Remove the user units that `timer install --user` wrote.")
def uninstall_command(root: Path, user: bool) -> None:
    """Remove the systemd timer and services, or the cron line."""
    from ..renewal import timer

    removed = timer.uninstall(root, user=user)
    click.echo("\n".join(f"removed {p}" for p in removed) or "nothing installed")
