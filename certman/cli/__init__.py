"""The ``certman`` command: a thin shell over the library.

Each command parses its flags, makes one library call and renders the result. This
module is the one place where a ``CertmanError`` becomes ``certman: <message>``, a
hint line and an exit code; anything else is an internal error (exit 70). Command
modules import the library inside their functions, so ``--help`` stays instant.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click
import msgspec

from .. import __version__
from ..errors import EXIT_INTERNAL, EXIT_INTERRUPTED, CertmanError
from ._termination import Terminated, TerminationGuard

log = logging.getLogger("certman")


class CliContext(msgspec.Struct):
    config_path: Path | None
    overrides: dict[str, Any] = msgspec.field(default_factory=dict)

    def settings(self, **flags: Any) -> Any:
        from ..config import load_settings

        return load_settings(self.config_path, overrides={**self.overrides, **flags})

    def config_file(self) -> Path:
        """The certman.toml the settings come from, as hints name it (it may not exist)."""
        from ..paths import default_config_path

        return self.config_path or default_config_path()


def fail(message: str, hint: str | None = None) -> None:
    from ..log import redact

    click.echo(f"certman: {redact(message)}", err=True)
    if hint:
        click.echo(f"hint: {redact(hint)}", err=True)


class CertmanGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        import importlib

        command: click.Command = importlib.import_module(f"{__name__}.{module_name}").command
        _accept_keystore_option(command)
        return command

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        # SIGTERM becomes Terminated in the main thread, so that every cleanup runs.
        guard = TerminationGuard.install()  # None off the main thread (e.g. a test runner thread)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except CertmanError as exc:
            fail(exc.message, exc.hint)
            code = exc.exit_code
        except click.UsageError as exc:
            command = f" {exc.ctx.command_path.split(' ', 1)[1]}" if exc.ctx and " " in exc.ctx.command_path else ""
            fail(exc.format_message(), f"see `certman{command} --help`")
            code = 2
        except click.ClickException as exc:
            fail(exc.format_message())
            code = exc.exit_code
        except (click.Abort, KeyboardInterrupt, Terminated):
            _kill_children()
            fail("interrupted")
            code = EXIT_INTERRUPTED
        except Exception as exc:
            log.debug("internal error", exc_info=True)
            fail(f"internal error (please report): {type(exc).__name__}", "run again with -vv to see the details")
            code = EXIT_INTERNAL
        finally:
            # A hook of a reloader abandoned at its deploy timeout must not outlive the run either.
            _kill_children()
            if guard is not None:
                guard.uninstall()
        sys.exit(code or 0)


def _kill_children() -> None:
    """Kill every program certman started that still runs: hooks run in their own process
    groups, which Ctrl-C at a terminal does not reach."""
    children = sys.modules.get("certman.children")  # never loaded: nothing was started
    if children is not None:
        children.kill_all()


@click.group(cls=CertmanGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="certman")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    envvar="CERTMAN_CONFIG",
    help="certman.toml to read (default /etc/certman/certman.toml as root).",
)
@click.option(
    "--keystore",
    type=click.Path(path_type=Path),
    help="Keystore directory (env CERTMAN_KEYSTORE; default /var/lib/certman as root).",
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, keystore: Path | None, verbose: int) -> None:
    """Get and renew ACME certificates for the TLS proxy in front of your app."""
    from ..log import setup

    setup(verbose)
    ctx.obj = CliContext(config_path, {"keystore": keystore})


def main() -> None:
    cli.main(prog_name="certman")


# Subcommand name -> module of this package defining it as ``command``. Modules load
# only when their command runs (or for --help), which keeps start-up short.
COMMANDS = {
    "account": "account",
    "doctor": "doctor",
    "explain": "explain",
    "import": "import_certbot",
    "issue": "issue",
    "list": "listing",
    "plugins": "plugins",
    "reconfigure": "reconfigure",
    "remove": "remove",
    "renew": "renew",
    "revoke": "revoke",
    "show": "show",
    "timer": "timer",
    "verify": "verify",
}


def _keystore_callback(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.find_object(CliContext).overrides["keystore"] = value  # type: ignore[union-attr]


def _accept_keystore_option(command: click.Command) -> None:
    """Let `certman issue --keystore DIR` work as well as `certman --keystore DIR issue`."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _accept_keystore_option(sub)
        return
    if not any("--keystore" in getattr(p, "opts", ()) for p in command.params):
        command.params.append(
            click.Option(
                ["--keystore"],
                type=click.Path(path_type=Path),
                expose_value=False,
                callback=_keystore_callback,
                help="Keystore directory (same as certman --keystore).",
            )
        )
