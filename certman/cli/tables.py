"""Tables that fit the terminal: columns are dropped, cut or shortened in a stated order.

A table that is too wide for ``width`` columns takes its ``steps`` one at a time until it
fits: drop a column, squeeze one (cells cut with an ellipsis, never below the header's
width or 12), or swap one for a shorter form of the same facts (a date for a time).
Status columns are coloured after padding, so colour never shifts the alignment.
"""

from __future__ import annotations

from functools import cached_property

import msgspec

from . import terminal

MIN_SQUEEZE = 12
GAP = "  "


class Column(msgspec.Struct, frozen=True, dict=True):
    header: str
    cells: tuple[str, ...]
    styled: bool = False  # cells are status words (terminal.status colours them)

    @cached_property
    def width(self) -> int:
        return max([len(self.header), *map(len, self.cells)])


class Drop(msgspec.Struct, frozen=True):
    header: str


class Squeeze(msgspec.Struct, frozen=True):
    header: str


class Swap(msgspec.Struct, frozen=True):
    header: str
    shorter: Column


Step = Drop | Squeeze | Swap


def total(columns: list[Column]) -> int:
    return sum(c.width for c in columns) + len(GAP) * (len(columns) - 1)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit(columns: list[Column], width: int, steps: list[Step]) -> list[Column]:
    """``columns`` after as many ``steps`` as it takes to be at most ``width`` wide."""
    for step in steps:
        excess = total(columns) - width
        if excess <= 0:
            break
        at = next((i for i, c in enumerate(columns) if c.header == step.header), None)
        if at is None:
            continue
        if isinstance(step, Drop):
            del columns[at]
        elif isinstance(step, Swap):
            columns[at] = step.shorter
        else:
            column = columns[at]
            limit = max(column.width - excess, len(column.header), MIN_SQUEEZE)
            columns[at] = msgspec.structs.replace(column, cells=tuple(_cut(c, limit) for c in column.cells))
    return columns


def render(columns: list[Column], width: int | None = None, steps: list[Step] | None = None) -> str:
    """The header line and one line per row; fitted to ``width`` when ``steps`` are given."""
    if steps:
        columns = fit(list(columns), width or terminal.width(), steps)
    widths = [c.width for c in columns]
    rows = len(columns[0].cells) if columns else 0
    lines = [GAP.join(c.header.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    for row in range(rows):
        cells = [
            terminal.status(c.cells[row], w) if c.styled else c.cells[row].ljust(w)
            for c, w in zip(columns, widths, strict=True)
        ]
        lines.append(GAP.join(cells).rstrip())
    return "\n".join(lines)


def simple(headers: list[str], rows: list[list[str]], styled: tuple[str, ...] = ()) -> str:
    """A table of ``rows`` under ``headers`` at its natural width."""
    columns = [Column(h, tuple(r[i] for r in rows), styled=h in styled) for i, h in enumerate(headers)]
    return render(columns)
