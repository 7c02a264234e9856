"""Run-wide setting values as the operator wrote them: parsed, or refused in their words.

A refusal names the key as written (``http-port`` stays ``http-port``), shows the value
in TOML spelling and says the expected form with an example, never a Python type.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .errors import ConfigError

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}

# Expected form and an example value, by the Settings field's annotation.
_FORMS = {
    "bool": ("true or false", "true"),
    "int": ("a whole number", "80"),
    "str": ("a quoted string", '"value"'),
    "str | None": ("a quoted string", '"value"'),
    "Path": ("a quoted path", '"/var/lib/certman"'),
}
# The two settings that are TOML tables, not scalars.
_TABLE_FORMS = {
    "certificates": ("a [[certificate]] table", '[[certificate]] with names = ["example.com"] under it'),
    "solvers": (
        "a solver name in quotes, or [[solver]] tables",
        'solver = "standalone", or [[solver]] with name = "dns-01" and match = ["*.example.com"] under it',
    ),
}


def shown(value: Any) -> str:
    """``value`` in TOML spelling: "text", true, 80, [ ... ], { ... }."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[ ... ]" if value else "[]"
    if isinstance(value, dict):
        return "a table"
    return json.dumps(str(value))


def coerce(key: str, value: Any, origin: str, *, kind: str, default: Any, written: str | None = None) -> Any:
    """``value`` for Settings field ``key`` of annotation ``kind``; raises ``ConfigError``
    naming ``written`` (the key as the operator spelled it, default ``key``)."""
    written = written or key
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in TRUE | FALSE:
                return text in TRUE
            raise ValueError(value)
        if kind == "int":
            if isinstance(value, bool) or isinstance(value, float):
                raise ValueError(value)
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            number = float(value)
            # Every float setting is a duration (timeout, lock_timeout): nan, inf or a
            # negative one would make waits never end or fail at once, far from the cause.
            if not math.isfinite(number) or number <= 0:
                raise ValueError(value)
            return number
        if kind == "Path":
            if not isinstance(value, (str, Path)):
                raise ValueError(value)
            return Path(str(value)).expanduser()
        if key in _TABLE_FORMS:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ValueError(value)
            return tuple(value)
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    except (TypeError, ValueError):
        if kind == "float":
            expected, example = "a positive number of seconds", f"{default:g}"
        else:
            expected, example = _TABLE_FORMS.get(key) or _FORMS.get(kind, ("a quoted string", '"value"'))
        example = example if key in _TABLE_FORMS else f"{written} = {example}"
        raise ConfigError(f"{origin}: {written} = {shown(value)} is not {expected}", f"for example {example}") from None
