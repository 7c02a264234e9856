"""Every command module of certman/cli is reachable by its command name."""

from __future__ import annotations

import importlib
import pkgutil

import click

import certman.cli
from certman.cli import COMMANDS


def test_every_cli_module_with_a_command_is_registered_under_its_name() -> None:
    defined = {}
    for info in pkgutil.iter_modules(certman.cli.__path__):
        command = getattr(importlib.import_module(f"certman.cli.{info.name}"), "command", None)
        if isinstance(command, click.Command):
            defined[command.name] = info.name
    assert defined == COMMANDS
