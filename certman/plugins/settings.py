"""Plugin settings: one frozen dataclass per plugin, filled from options, env and secret files.

Each field may carry ``metadata``:

    help     one line shown by ``certman plugins`` and in the docs
    env      the environment variable that sets it (CERTMAN_<PLUGIN>_<SETTING>)
    secret   True: also read from ``<env>_FILE`` or option ``<field>_file``, registered
             with the log redaction filter, and never echoed in an error message

Precedence per field: option, then option ``<field>_file`` (secrets), then env, then
``<env>_FILE`` (secrets), then the dataclass default.

A field's type says how a value is read: str, int, float, bool, Path, a list
(``tuple[X, ...]``; X may be any class with a ``parse(text)`` classmethod), a table
(``Mapping[str, str]``). ``Annotated`` adds a ``Constraint`` the value must meet; the
common ones are named here: ``Port``, ``Seconds`` and ``Argv``.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import functools
import logging
import math
import os
import types
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

from ..credentials import read_secret, read_secret_file
from ..errors import ConfigError
from ..log import register_secret

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Constraint:
    """What a read value must also be; ``expected`` completes "<setting> must be ...".

    ``raw``: the test sees the value as written, before it is read (an argv list must
    not be accepted as a comma-separated string).
    """

    expected: str
    test: Callable[[Any], bool]
    example: str | None = None
    raw: bool = False


@dataclass(frozen=True)
class Recorded:
    """How a setting is recorded in spec.toml so that it means the same from any directory
    and PATH (certman.paths): ``path`` is made absolute, ``program`` is resolved through
    PATH when it is a bare name, ``argv`` has its first item recorded as a program."""

    kind: str


def _is_argv(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(a, str) for a in value)


# A TCP or UDP port to listen on or connect to.
Port = Annotated[int, Constraint("an integer from 1 to 65535", lambda n: 0 < n < 65536)]
# A duration in seconds; zero or less would mean "never wait", which no timeout wants.
Seconds = Annotated[float, Constraint("a positive number", lambda x: math.isfinite(x) and x > 0)]
# A command as a list of strings, run without a shell.
Argv = Annotated[
    tuple[str, ...],
    Constraint(
        "a non-empty list of strings",
        _is_argv,
        example='write it as an argv list, e.g. ["systemctl", "reload", "nginx"]; no shell is used',
        raw=True,
    ),
    Recorded("argv"),
]
# A file or directory given as a string (Path-typed settings are recorded as paths too).
FilePath = Annotated[str, Recorded("path")]
# A program: its path, or a bare name looked up on PATH.
Program = Annotated[str, Recorded("program")]


def setting(*, help: str, env: str | None = None, secret: bool = False, default: Any = MISSING) -> Any:
    """A dataclass field with the metadata ``certman plugins`` and ``settings_from`` read."""
    metadata = {"help": help, "env": env, "secret": secret}
    if isinstance(default, (list, dict)):
        template = default
        return dataclasses.field(default_factory=lambda: type(template)(template), metadata=metadata)
    # A secret must not show up in a repr that lands in a log line or traceback.
    return dataclasses.field(default=default, metadata=metadata, repr=not secret)


@dataclass(frozen=True)
class SettingInfo:
    """What ``certman plugins`` prints for one setting."""

    name: str
    type: str
    default: str | None
    required: bool
    help: str
    env: str | None
    secret: bool


def describe(cls: type) -> list[SettingInfo]:
    """One ``SettingInfo`` per field of the settings dataclass ``cls``, in field order."""
    hints = typing.get_type_hints(cls)
    infos = []
    for f in dataclasses.fields(cls):
        required = f.default is MISSING and f.default_factory is MISSING
        default = None
        if f.default is not MISSING:
            default = repr(f.default)
        elif f.default_factory is not MISSING:
            default = repr(f.default_factory())
        infos.append(
            SettingInfo(
                name=f.name,
                type=_type_name(hints[f.name]),
                default=default,
                required=required,
                help=f.metadata.get("help", ""),
                env=f.metadata.get("env"),
                secret=bool(f.metadata.get("secret")),
            )
        )
    return infos


def settings_from(
    cls: type[T],
    options: Mapping[str, Any],
    *,
    plugin: str,
    env: Mapping[str, str] | None = None,
    ignore: Collection[str] = (),
) -> T:
    """Build ``cls`` from config ``options`` and ``env``.

    ``plugin`` names the plugin in messages ("standalone solver"). ``ignore`` lists the
    options another part of the same table reads (a reloader table's ``name`` and
    ``verify``). An unknown option, a missing required setting, a value of the wrong
    type or one that breaks its ``Constraint`` is a ConfigError (exit 2) naming the
    plugin and the setting; a secret's value is never part of the message.
    """
    env = os.environ if env is None else env
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    known = set(fields) | {f"{name}_file" for name, f in fields.items() if f.metadata.get("secret")}
    unknown = sorted(set(options) - known - set(ignore))
    if unknown:
        guesses = [f"{close[0]} for {u}" for u in unknown if (close := difflib.get_close_matches(u, fields, 1))]
        raise ConfigError(
            f"{plugin}: unknown option(s) {', '.join(unknown)}",
            (f"did you mean {', '.join(guesses)}? " if guesses else "")
            + f"known settings: {', '.join(sorted(fields))} (see `certman plugins`)",
        )
    types_of = _field_types(cls)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        raw, origin = _raw_value(f, options, env)
        if raw is MISSING:
            if f.default is MISSING and f.default_factory is MISSING:
                where = f"option {name!r}" + (f" or env {f.metadata['env']}" if f.metadata.get("env") else "")
                raise ConfigError(f"{plugin}: missing required setting {name}", f"set {where}")
            continue
        secret = bool(f.metadata.get("secret"))
        kind, constraints = types_of[name]
        for constraint in (c for c in constraints if c.raw):
            _check(constraint, raw, plugin, name, origin, secret)
        values[name] = _coerce(raw, kind, plugin, name, origin, secret)
        for constraint in (c for c in constraints if not c.raw):
            _check(constraint, values[name], plugin, name, origin, secret)
        if secret:
            register_secret(values[name])
            if origin == f"option {name}":
                # spec.toml never keeps a secret (CertSpec.storable), so a renewal needs it from a file.
                log.warning(
                    "%s: %s is written inline; it is not saved with the certificate, so renewals "
                    "need %s_file or the %s_FILE environment variable",
                    plugin,
                    name,
                    name,
                    f.metadata.get("env") or "",
                )
    return cls(**values)


def secret_option_names(kind: str, name: str, options: Mapping[str, Any]) -> set[str]:
    """The options of plugin ``name`` that hold secrets, per its settings' metadata.

    A solver that names a DNS ``provider`` carries that provider's settings too.
    """
    classes = settings_classes(kind, name, options)
    return {f.name for cls in classes for f in dataclasses.fields(cls) if f.metadata.get("secret")}


@functools.cache
def recorded_kinds(cls: type) -> dict[str, str]:
    """Per option of settings class ``cls`` naming a file or a program, its ``Recorded`` kind.

    Path-typed settings and the ``<secret>_file`` option of every secret are paths.
    """
    kinds: dict[str, str] = {}
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
            hint = args[0]
        marks = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Recorded)]
        if marks:
            kinds[name] = marks[0].kind
        elif hint is Path:
            kinds[name] = "path"
    for f in dataclasses.fields(cls):
        if f.metadata.get("secret"):
            kinds[f"{f.name}_file"] = "path"
    return kinds


def _raw_value(f: dataclasses.Field[Any], options: Mapping[str, Any], env: Mapping[str, str]) -> tuple[Any, str]:
    secret = bool(f.metadata.get("secret"))
    var = f.metadata.get("env")
    if f.name in options:
        return options[f.name], f"option {f.name}"
    if secret and f"{f.name}_file" in options:
        path = Path(str(options[f"{f.name}_file"])).expanduser()
        return read_secret_file(path, f"option {f.name}_file"), f"option {f.name}_file"
    if secret and var:
        value = read_secret(var, env)
        if value is not None:
            return value, f"env {var}" + ("_FILE" if env.get(f"{var}_FILE") else "")
        return MISSING, ""
    if var and env.get(var):
        return env[var], f"env {var}"
    return MISSING, ""


# Resolving a class's type hints costs ten times the rest of settings_from: once per class.
_FIELD_TYPES: dict[type, dict[str, tuple[Any, tuple[Constraint, ...]]]] = {}


def _field_types(cls: type) -> dict[str, tuple[Any, tuple[Constraint, ...]]]:
    """Per field of ``cls``: its type and its constraints."""
    found = _FIELD_TYPES.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        found = _FIELD_TYPES[cls] = {name: _constraints(hint) for name, hint in hints.items()}
    return found


def _constraints(hint: Any) -> tuple[Any, tuple[Constraint, ...]]:
    """``hint`` without its ``Annotated`` layer (also inside ``X | None``), and the constraints it held."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        inner, constraints = _constraints(args[0])
        return inner | None, constraints
    if typing.get_origin(hint) is Annotated:
        return hint.__origin__, tuple(m for m in hint.__metadata__ if isinstance(m, Constraint))
    return hint, ()


def _check(constraint: Constraint, value: Any, plugin: str, name: str, origin: str, secret: bool) -> None:
    if constraint.test(value):
        return
    shown = "(secret)" if secret else repr(value)
    where = "" if origin == f"option {name}" else f" ({origin})"
    raise ConfigError(
        f"{plugin}: {name} must be {constraint.expected}, not {shown}{where}",
        constraint.example or f"set {name} to {constraint.expected}",
    )


def _coerce(raw: Any, kind: Any, plugin: str, name: str, origin: str, secret: bool) -> Any:
    shown = "(secret)" if secret else repr(raw)
    base = typing.get_origin(kind)
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if base in (typing.Union, types.UnionType) and len(args) == 1:
        kind, base, args = args[0], typing.get_origin(args[0]), list(typing.get_args(args[0]))
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if kind is int and not isinstance(raw, bool):
            return int(raw)
        if kind is float and not isinstance(raw, bool):
            return float(raw)
        if kind is str:
            if not isinstance(raw, (str, int)):
                raise ValueError(raw)
            return str(raw)
        if kind is Path:
            if not isinstance(raw, (str, Path)) or not str(raw):
                raise ValueError(raw)
            return Path(raw)
        if base is tuple:
            items = [s.strip() for s in raw.split(",") if s.strip()] if isinstance(raw, str) else list(raw)
            item_kind: Any = args[0] if args else str
            if item_kind is str:
                return tuple(str(i) for i in items)
            try:
                return tuple(i if isinstance(i, item_kind) else item_kind.parse(str(i)) for i in items)
            except ConfigError as exc:
                raise ConfigError(f"{plugin}: {origin}: {exc.message}", exc.hint) from None
        if base in (dict, collections.abc.Mapping):
            if not isinstance(raw, Mapping):
                raise ValueError(raw)
            return {str(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError):
        pass
    raise ConfigError(
        f"{plugin}: {origin} = {shown} is not a valid {_type_name(kind)}",
        f"set {name} to a valid {_type_name(kind)}; `certman plugins` lists each plugin's settings",
    )


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return f"{_type_name(args[0])} (optional)" if len(args) == 1 else str(kind)
    if typing.get_origin(kind) is tuple:
        return "list"
    if typing.get_origin(kind) in (dict, collections.abc.Mapping):
        return "table"
    if typing.get_origin(kind) is Annotated:
        return _type_name(kind.__origin__)
    name = getattr(kind, "__name__", None) or str(kind)
    return {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "Path": "path"}.get(name, name)


def settings_classes(kind: str, name: str, options: Mapping[str, Any]) -> list[type]:
    """The settings dataclasses plugin ``name`` reads ``options`` with.

    A solver that names a DNS ``provider`` carries that provider's settings too. Raises
    UsageError for an unknown plugin, as ``registry.lookup`` does.
    """
    from . import registry as plugins

    classes = list(getattr(plugins.lookup(kind, name), "settings_classes", ()))
    provider = options.get("provider")
    if kind == "solvers" and isinstance(provider, str):
        classes += getattr(plugins.lookup("dns_providers", provider), "settings_classes", ())
    return classes
