"""Reading certbot's renewal/<name>.conf, a configobj file: ``key = value`` lines under
``[section]`` and ``[[subsection]]`` headers, ``#`` comments, and lists written as
comma-separated values."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigError

_HEADER = re.compile(r"^(\[+)\s*([^\]]+?)\s*(\]+)$")


def parse(text: str, origin: str) -> dict[str, Any]:
    """Nested dicts of strings: top-level keys, then one dict per section."""
    root: dict[str, Any] = {}
    stack: list[dict[str, Any]] = [root]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = _HEADER.match(line)
        if header:
            depth = len(header.group(1))
            if depth != len(header.group(3)) or depth > len(stack):
                raise ConfigError(f"{origin}:{number}: malformed section header {line!r}")
            del stack[depth:]
            section: dict[str, Any] = {}
            stack[-1][header.group(2)] = section
            stack.append(section)
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"{origin}:{number}: expected 'key = value', got {line!r}")
        stack[-1][key.strip()] = _unquote(value.strip())
    return root


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def as_list(value: Any) -> list[str]:
    """A configobj list value (``a, b,``) as a list of strings."""
    if value is None:
        return []
    return [item.strip() for item in str(value).split(",") if item.strip()]
