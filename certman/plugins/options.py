"""Numeric plugin options (ports, timeouts) read from certman.toml tables or spec.toml.

A table value can be any TOML type, so a bad one must become a UsageError that
names the option, not a ValueError from int() or float().
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import UsageError


def number_option(
    options: Mapping[str, Any],
    key: str,
    default: float | int,
    kind: type,
    owner: str,
    *,
    positive: bool = False,
    error: type[UsageError] = UsageError,
) -> Any:
    """``options[key]`` (else ``default``) as ``kind`` (int or float), or ``error`` naming the option."""
    value = options.get(key, default)
    try:
        # bool is an int to Python, but `port = true` is a mistake, not port 1.
        if isinstance(value, bool):
            raise TypeError(value)
        number = kind(value)
        if positive and not (math.isfinite(number) and number > 0):
            raise ValueError(value)
    except (TypeError, ValueError, OverflowError):
        what = "an integer" if kind is int else ("a positive number" if positive else "a number")
        raise error(
            f"{owner}: option {key} = {value!r} is not {what}", f"set {key} to {what} in the {owner}'s table"
        ) from None
    return number
