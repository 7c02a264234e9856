"""What the terminal allows: its width, and whether status words are coloured.

Colour goes only to a terminal: ``--color=auto`` (the default) colours when stdout is a
TTY, ``NO_COLOR`` (https://no-color.org) is unset and ``TERM`` is not ``dumb``;
``--color=always|never`` decides outright. Colour is never the only carrier of a
status: the word itself is always printed.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap

import click

# Status word -> click colour. Words of trouble are red, of attention yellow.
COLOURS = {
    "ok": "green",
    "renewed": "green",
    "issued": "green",
    "deployed": "green",
    "due": "yellow",
    "backing off": "yellow",
    "undeployed": "yellow",
    "not issued": "yellow",
    "unchecked": "yellow",
    "failed": "red",
    "FAIL": "red",
    "FAILED": "red",
    "MISMATCH": "red",
    "revoked": "red",
    "expired": "red",
}
_BY_LENGTH = sorted(COLOURS, key=len, reverse=True)
FALLBACK_WIDTH = 100


class Choice:
    """This run's colour choice (set once by the ``certman`` group from ``--color``)."""

    colour = False


def configure(mode: str, *, stream: object = None, env: dict[str, str] | None = None) -> None:
    """Decide colour for this run from ``mode`` (auto, always, never)."""
    env = dict(os.environ) if env is None else env
    stream = sys.stdout if stream is None else stream
    if mode == "always":
        Choice.colour = True
    elif mode == "never" or "NO_COLOR" in env and env["NO_COLOR"] != "":
        Choice.colour = False
    else:
        isatty = getattr(stream, "isatty", None)
        Choice.colour = bool(isatty and isatty()) and env.get("TERM") != "dumb"


def width() -> int:
    """Columns to fit: ``COLUMNS``, else the terminal's, else 100 when piped."""
    return max(shutil.get_terminal_size((FALLBACK_WIDTH, 24)).columns, 40)


def status(text: str, padded_to: int = 0) -> str:
    """``text`` (padded to ``padded_to`` columns) with its leading status word coloured
    when this run colours: ``FAILED: why`` colours ``FAILED``."""
    padded = text.ljust(padded_to)
    if not Choice.colour:
        return padded
    word = next((w for w in _BY_LENGTH if text == w or text.startswith((w + ":", w + " "))), None)
    if word is None:
        return padded
    colour = COLOURS[word]
    return click.style(word, fg=colour, bold=colour == "red") + padded[len(word) :]


# Never broken across lines: a time, and a `command` to copy.
_UNBROKEN = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC|`[^`]*`")
_GLUE = "\x00"


def wrap(text: str, indent: str = "  ", columns: int | None = None) -> list[str]:
    """``text`` as lines of at most ``columns`` (default: the terminal's), indented; a
    time or a `command` stays on one line."""
    columns = columns or width()
    glued = _UNBROKEN.sub(lambda m: m.group().replace(" ", _GLUE), text)
    lines = textwrap.wrap(
        glued,
        width=max(columns - 1, 30),
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return [line.replace(_GLUE, " ") for line in lines]
