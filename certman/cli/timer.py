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
@click.pass_obj
def install_command(obj: CliContext, /, cron: bool, user: bool, show: bool, root: Path) -> None:
    """Write and enable certman-renew.service and certman-renew.timer (or the cron line)."""
    from ..renewal import timer

    settings = obj.settings()
    # The unit runs from /: a relative --config would name another file there.
    config = obj.config_path.absolute() if obj.config_path else None
    installed = timer.install(
        root, cron=cron, user=user, keystore=settings.keystore.absolute(), config=config, dry_run=show
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
    """Remove the systemd timer and service, or the cron line."""
    from ..renewal import timer

    removed = timer.uninstall(root, user=user)
    click.echo("\n".join(f"removed {p}" for p in removed) or "nothing installed")
