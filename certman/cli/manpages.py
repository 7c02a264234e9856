"""Man pages from the Click command tree, which loads its subcommands lazily.

``pages()`` walks ``list_commands``/``get_command`` (click-man cannot see commands that
are not registered up front) and renders one page per command in man(7) roff:
certman(1) and certman-<command>[-<sub>](1). The date is pinned, so the pages are the
same bytes on every machine; ``make man`` writes them into docs/man/, and a test
checks that those are current.
"""

from __future__ import annotations

import re

import click

from .. import __version__

# The pages' date: pinned for reproducible output; changed with the release.
MANUAL_DATE = "2026-12-01"
SECTION = "1"


def _escape(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    # A line starting with . or ' would be read as a request.
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def _paragraphs(text: str) -> list[str]:
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        if block.startswith("\b"):
            lines = block.removeprefix("\b").strip("\n").splitlines()
            out.append(".nf\n" + "\n".join(_escape(line.strip()) for line in lines) + "\n.fi")
        else:
            out.append(_escape(" ".join(block.split())))
    return out


def _page(path: list[str], command: click.Command, ctx: click.Context) -> str:
    name = "-".join(path)
    short = command.get_short_help_str(limit=80)
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [
        f'.TH "{name.upper()}" "{SECTION}" "{MANUAL_DATE}" "certman {__version__}" "certman manual"',
        ".SH NAME",
        f"{_escape(name)} \\- {_escape(short)}",
        ".SH SYNOPSIS",
        f".B {_escape(' '.join(path))}",
        _escape(usage),
        ".SH DESCRIPTION",
    ]
    lines += [p for para in _paragraphs(command.help or short) for p in (para, ".PP")][:-1]
    options = [p.get_help_record(ctx) for p in command.get_params(ctx) if isinstance(p, click.Option)]
    if any(options):
        lines.append(".SH OPTIONS")
        for record in options:
            if record is not None:
                lines += [".TP", f"\\fB{_escape(record[0])}\\fR", _escape(" ".join(record[1].split()))]
    if isinstance(command, click.Group):
        lines.append(".SH COMMANDS")
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None:
                lines += [".TP", f"\\fB{_escape(sub_name)}\\fR", _escape(sub.get_short_help_str(limit=80))]
                lines.append(f"See \\fB{_escape(name)}\\-{_escape(sub_name)}\\fR({SECTION}).")
    see_also = "\\fBcertman\\fR(1); " if path[1:] else ""
    docs = "docs/cli.md, docs/getting-started.md and docs/renewal.md in certman's source."
    lines += [".SH SEE ALSO", see_also + docs]
    return "\n".join(lines) + "\n"


def pages(root: click.Command | None = None) -> dict[str, str]:
    """File name (``certman-renew.1``) -> page, for every command of the tree."""
    from . import cli

    found: dict[str, str] = {}

    def walk(path: list[str], command: click.Command, parent: click.Context | None) -> None:
        # As the CLI builds them: the group's settings (-h as well as --help) reach every level.
        ctx = click.Context(command, info_name=path[-1], parent=parent, **command.context_settings)
        found[f"{'-'.join(path)}.{SECTION}"] = _page(path, command, ctx)
        if isinstance(command, click.Group):
            for sub_name in command.list_commands(ctx):
                sub = command.get_command(ctx, sub_name)
                if sub is not None:
                    walk([*path, sub_name], sub, ctx)

    walk(["certman"], root or cli, None)
    return found
