"""The ``certman`` command: a thin shell over the library.

Each command parses its flags, makes one library call and renders the result. This
module is the one place where a ``CertmanError`` becomes ``certman: <message>``, a
hint line and an exit code (and, under ``--json``, ``{"error": {"message", "hint",
"exit_code"}}`` on stdout); anything else is an internal error (exit 70). Command
modules import the library inside their functions, so ``--help`` stays instant.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click
import msgspec

from .. import __version__
from ..errors import EXIT_INTERNAL, EXIT_INTERRUPTED, CertmanError
from ._termination import Terminated, TerminationGuard

log = logging.getLogger("certman")


# The commands that change state or talk to the CA: their runs go to the log file.
LOGGED = frozenset({"account", "import", "issue", "reconfigure", "remove", "renew", "revoke"})


class CliContext(msgspec.Struct):
    config_path: Path | None
    overrides: dict[str, Any] = msgspec.field(default_factory=dict)
    log_run: bool = False

    def settings(self, **flags: Any) -> Any:
        from ..config import load_settings

        overrides = {**self.overrides, **flags}
        try:
            settings = load_settings(self.config_path, overrides=overrides)
        except CertmanError:
            if self.log_run:
                # The failure is logged too, to the keystore doctor would check: a timer's
                # run that stops at a broken certman.toml leaves its reason there.
                from ..settings_fallback import settings_without_config

                self.log_run = False
                _attach_log(settings_without_config(self.config_file(), os.environ, overrides))
            raise
        if self.log_run:
            self.log_run = False  # once per run
            _attach_log(settings)
        return settings

    def config_file(self) -> Path:
        """The certman.toml the settings come from, as hints name it (it may not exist)."""
        from ..paths import default_config_path

        return self.config_path or default_config_path()


def _attach_log(settings: Any) -> None:
    import logging

    from ..log_file import attach, default_path

    if settings.log_file != "":
        base = Path(settings.log_file) if settings.log_file else default_path(Path(settings.keystore))
        attach(base, Path(settings.keystore), settings.log_retention_days)
        logging.getLogger("certman").info("certman %s: %s", __version__, click.get_current_context().command_path)


def fail(message: str, hint: str | None = None) -> None:
    from ..log import redact

    click.echo(f"certman: {redact(message)}", err=True)
    if hint:
        click.echo(f"hint: {redact(hint)}", err=True)


class JsonOutput:
    """Whether this run printed its JSON document, so a failure after it adds no second one."""

    printed = False


def echo_json(text: str) -> None:
    """Print a command's ``--json`` document (at most one per run)."""
    JsonOutput.printed = True
    click.echo(text)


def _json_error(message: str, hint: str | None, code: int) -> None:
    import json

    from ..log import redact

    if not JsonOutput.printed:
        click.echo(
            json.dumps(
                {"error": {"message": redact(message), "hint": redact(hint) if hint else None, "exit_code": code}}
            )
        )


class CertmanGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        import importlib

        command: click.Command = importlib.import_module(f"{__name__}.{module_name}").command
        if cmd_name not in WITHOUT_CYCLE_COLLECTOR:
            gc.enable()
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
        # SIGTERM and Ctrl-C become Terminated in the main thread, so that every cleanup runs.
        guard = TerminationGuard.install()  # None off the main thread (e.g. a test runner thread)
        argv = list(sys.argv[1:] if args is None else args)
        JsonOutput.printed = False
        message: str | None = None
        hint: str | None = None
        _accept_children()
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except CertmanError as exc:
            message, hint, code = exc.message, exc.shown_hint, exc.exit_code
        except click.UsageError as exc:
            command = f" {exc.ctx.command_path.split(' ', 1)[1]}" if exc.ctx and " " in exc.ctx.command_path else ""
            message, hint, code = exc.format_message(), f"see `certman{command} --help`", 2
        except click.ClickException as exc:
            message, hint, code = exc.format_message(), "see `certman --help`", exc.exit_code
        except (click.Abort, KeyboardInterrupt, Terminated):
            _stop_children()
            message, code = "interrupted", EXIT_INTERRUPTED
        except Exception as exc:
            log.debug("internal error", exc_info=True)
            message = f"internal error (please report): {type(exc).__name__}"
            hint, code = "run again with -vv to see the details", EXIT_INTERNAL
        finally:
            # A hook of a reloader abandoned at its deploy timeout must not outlive the run either.
            _kill_children()
            if guard is not None:
                guard.uninstall()
        # For the log file (certman.log_file); stderr shows debug lines only with -vv.
        log.debug("exit %s%s", code or 0, f": {message} (hint: {hint})" if message else "")
        if message is not None:
            fail(message, hint)
            # "--" ends the options: a NAME spelled --json after it asks for no JSON.
            if "--json" in argv[: argv.index("--") if "--" in argv else None]:
                _json_error(message, hint, code)
        sys.exit(code or 0)


def _accept_children() -> None:
    """Let this command start children: an earlier one in this process may have been interrupted."""
    children = sys.modules.get("certman.children")
    if children is not None:
        children.accept()


def _stop_children() -> None:
    """Ctrl-C, SIGTERM: kill every program certman started, and any a worker thread starts later."""
    from .. import children  # loaded here if no thread has yet, so that one loading it later is refused too

    children.stop_all()


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
@click.option("--store", help="Fleet store, a libpq connection string (env CERTMAN_STORE; docs/fleet.md).")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour status words; auto: only on a terminal, and not with NO_COLOR set.",
)
@click.pass_context
def cli(
    ctx: click.Context, config_path: Path | None, keystore: Path | None, store: str | None, verbose: int, color: str
) -> None:
    """Get and renew ACME certificates for the TLS proxy in front of your app."""
    from ..log import setup
    from .terminal import Choice, configure

    setup(verbose)
    configure(color)
    _start_status_line(ctx)
    # click.echo strips styles off a pipe unless told; --color=always is that telling.
    ctx.color = Choice.colour
    ctx.obj = CliContext(config_path, {"keystore": keystore, "store": store}, log_run=ctx.invoked_subcommand in LOGGED)


def _start_status_line(ctx: click.Context) -> None:
    from .status_line import StatusLine

    line = StatusLine.start()
    if line is not None:
        for handler in logging.getLogger().handlers:
            handler.addFilter(line.filter)
        # Closed before the error handler in CertmanGroup.main prints anything.
        ctx.call_on_close(line.stop)


def main() -> None:
    """The ``certman`` program: run one command, then exit with its code."""
    # Off while the imports run (their objects all live until the exit), and back on once
    # the command's module is loaded, except for WITHOUT_CYCLE_COLLECTOR.
    gc.disable()
    from .output import Output

    sys.stdout = Output(sys.stdout)
    try:
        cli.main(prog_name="certman")
    finally:
        # The process ends here. Interpreter teardown runs full collections over every
        # object the imports made (requests, josepy, cryptography, acme): about 90 ms of a
        # 0.6 s `certman issue` on the 2-core bench machine. Frozen objects are left to the
        # exit; nothing certman needs runs from a collector (files are closed and fsynced,
        # children reaped, logs flushed by logging's atexit hook, which still runs).
        gc.freeze()


# Commands that make one certificate: their garbage is bounded, so the cyclic collector
# only costs time, about 2 % of `certman issue`'s instructions (bench/bench_instructions.py).
# A renew over N certificates, say, keeps it.
WITHOUT_CYCLE_COLLECTOR = frozenset({"issue"})

# Subcommand name -> module of this package defining it as ``command``. Modules load
# only when their command runs (or for --help), which keeps start-up short.
COMMANDS = {
    "account": "account",
    "challenge-server": "challenge_server",
    "completion": "completion",
    "doctor": "doctor",
    "explain": "explain",
    "import": "import_certbot",
    "issue": "issue",
    "list": "listing",
    "notify": "notify",
    "plugins": "plugins",
    "reconfigure": "reconfigure",
    "remove": "remove",
    "renew": "renew",
    "revoke": "revoke",
    "show": "show",
    "store": "store",
    "sync": "sync",
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
