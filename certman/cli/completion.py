"""`certman completion bash|zsh|fish`, and the stored names offered for NAME arguments."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_CERTMAN_COMPLETE"


def stored_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The certificate names in the keystore this command line would use that start with
    ``incomplete``; none when the keystore cannot be read (completion must never fail)."""
    # Imported here: every command with a NAME argument loads this module, and only TAB needs it.
    from click.shell_completion import CompletionItem

    from ..errors import CertmanError

    try:
        from ..keystore import FileKeystore
        from . import CliContext

        root = ctx.find_root()
        config = root.params.get("config_path")
        keystore = ctx.params.get("keystore") or root.params.get("keystore")
        settings = CliContext(config, {"keystore": keystore}).settings()
        if not settings.keystore.is_dir():
            return []  # pressing TAB must not create a keystore
        names = FileKeystore(settings.keystore, lock_timeout=1).names()
    except (CertmanError, OSError):
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def command(shell: str) -> None:
    """Print the completion script for SHELL; certificate names are offered for NAME.

    \b
    bash:  certman completion bash > /etc/bash_completion.d/certman
    zsh:   certman completion zsh > "${fpath[1]}/_certman"
    fish:  certman completion fish > ~/.config/fish/completions/certman.fish
    """
    from click.shell_completion import get_completion_class

    from . import cli

    completion = get_completion_class(shell)
    assert completion is not None  # every name in SHELLS is one of click's
    click.echo(completion(cli, {}, "certman", COMPLETE_VAR).source())
