"""Docs that run: every toml block of README.md and docs/ loads with certman's config
loader, and every `certman …` line in a code block parses against the Click command tree.

A toml block is a complete certman.toml unless the line before its fence says otherwise:

    <!-- certman.toml: NAME -->                 a complete one, named for fragments to join
    <!-- fragment of NAME -->                   top-level settings added to NAME
    <!-- fragment of NAME, in [[certificate]] -->  keys of NAME's first [[certificate]]
    <!-- not certman.toml: WHAT -->             another program's file (only parsed as TOML)
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
import tomli_w

from certman.cli import CliContext, cli
from certman.config import load_settings
from certman.deploy.batch import check_reloaders
from certman.renewal.declared import declared_specs

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"(?:^[ \t]*<!-- (?P<mark>[^\n]*?) -->\n)?"  # the optional marker line
    r"^(?P<indent>[ \t]*)```(?P<lang>\w*)\n(?P<body>.*?)^[ \t]*```",
    re.M | re.S,
)


@dataclass(frozen=True)
class Block:
    where: str
    lang: str
    mark: str
    text: str


def blocks() -> list[Block]:
    found = []
    for path in DOCS:
        source = path.read_text()
        for match in FENCE.finditer(source):
            indent = match["indent"]
            body = "".join(line.removeprefix(indent) for line in match["body"].splitlines(keepends=True))
            line = source.count("\n", 0, match.start("body"))
            found.append(Block(f"{path.relative_to(ROOT)}:{line}", match["lang"], match["mark"] or "", body))
    return found


TOML = [b for b in blocks() if b.lang == "toml"]
COMPLETE = {m.group(1): b for b in TOML if (m := re.fullmatch(r"certman\.toml: (\S+)", b.mark))}


def merged(block: Block) -> dict[str, Any]:
    """The complete certman.toml this block is or belongs to."""
    data = tomllib.loads(block.text)
    fragment = re.fullmatch(r"fragment of (\S+?)(, in \[\[certificate\]\])?", block.mark)
    if fragment is None:
        return data
    assert fragment.group(1) in COMPLETE, f"{block.where}: no block marked certman.toml: {fragment.group(1)}"
    whole = tomllib.loads(COMPLETE[fragment.group(1)].text)
    target = whole["certificate"][0] if fragment.group(2) else whole
    for key, value in data.items():
        target[key] = [*target.get(key, []), *value] if isinstance(value, list) else value
    return whole


@pytest.mark.parametrize("block", TOML, ids=[b.where for b in TOML])
def test_every_toml_block_loads(block: Block, tmp_path: Path) -> None:
    if block.mark.startswith("not certman.toml"):
        tomllib.loads(block.text)
        return
    config = tmp_path / "certman.toml"
    config.write_text(tomli_w.dumps(merged(block)))
    settings = load_settings(config, env={"CERTMAN_KEYSTORE": str(tmp_path / "keystore")})
    for spec in declared_specs(settings).values():
        check_reloaders(spec)


def command_lines() -> list[tuple[str, list[str]]]:
    lines = []
    for block in blocks():
        if block.lang not in ("", "sh", "shell", "console", "bash"):
            continue
        for number, raw in enumerate(block.text.splitlines()):
            text = re.sub(r"^(?:\$\s+|sudo\s+)", "", raw.strip())
            if not re.match(r"certman(\s|$)", text):
                continue
            # A synopsis: [optional] parts are taken as given, COMMAND ... stands for any.
            words = [w.strip("[]") for w in shlex.split(text, comments=True) if w not in ("COMMAND", "...")]
            # The shell's part of the line (a redirection, a pipe, the next command) is not certman's.
            shell = next(
                (i for i, w in enumerate(words) if w in ("|", "&&", ";") or w.lstrip("12").startswith((">", "<"))), None
            )
            words = words[:shell]
            lines.append((f"{block.where}+{number}", words[1:]))
    return lines


COMMANDS = command_lines()


def resolve(args: list[str]) -> None:
    """Parse ``args`` as `certman` would, level by level; click.UsageError if it would not."""
    command: click.Command = cli
    parent: click.Context | None = None
    name = "certman"
    while True:
        ctx = command.make_context(name, list(args), parent=parent, obj=CliContext(None), resilient_parsing=False)
        if not isinstance(command, click.Group):
            return
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            return
        name, sub, args = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        command, parent = sub, ctx


@pytest.mark.parametrize(("where", "args"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_every_command_line_parses(where: str, args: list[str]) -> None:
    try:
        resolve(args)
    except click.exceptions.Exit:
        pass  # --help, --version
    except click.UsageError as exc:
        pytest.fail(f"{where}: certman {shlex.join(args)}: {exc.format_message()}")


def test_the_docs_have_blocks_of_both_kinds() -> None:
    assert len(TOML) >= 10 and len(COMMANDS) >= 30
