"""Plugin settings: one frozen dataclass per plugin, filled from options, env and secret files.

Each field may carry ``metadata``:

    help     one line shown by ``certman plugins`` and in the docs
    env      the environment variable that sets it (CERTMAN_<PLUGIN>_<SETTING>)
    secret   True: also read from ``<env>_FILE`` or option ``<field>_file``, registered
             with the log redaction filter, and never echoed in an error message

Precedence per field: option, then option ``<field>_file`` (secrets), then env, then
``<env>_FILE`` (secrets), then the dataclass default.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import logging
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..credentials import read_secret, read_secret_file
from ..errors import ConfigError
from ..log import register_secret

T = TypeVar("T")

log = logging.getLogger(__name__)


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


def settings_from(cls: type[T], options: Mapping[str, Any], *, plugin: str, env: Mapping[str, str] | None = None) -> T:
    """Build ``cls`` from config ``options`` and ``env``; unknown or missing settings are a ConfigError."""
    env = os.environ if env is None else env
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    known = set(fields) | {f"{name}_file" for name, f in fields.items() if f.metadata.get("secret")}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"{plugin}: unknown setting(s) {', '.join(unknown)}",
            f"known settings: {', '.join(sorted(fields))} (see `certman plugins`)",
        )
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, f in fields.items():
        raw, origin = _raw_value(f, options, env)
        if raw is MISSING:
            if f.default is MISSING and f.default_factory is MISSING:
                where = f"option {name!r}" + (f" or env {f.metadata['env']}" if f.metadata.get("env") else "")
                raise ConfigError(f"{plugin}: missing required setting {name}", f"set {where}")
            continue
        values[name] = _coerce(raw, hints[name], plugin, name, origin, bool(f.metadata.get("secret")))
        if f.metadata.get("secret"):
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
    from . import registry as plugins

    classes = list(getattr(plugins.lookup(kind, name), "settings_classes", ()))
    provider = options.get("provider")
    if kind == "solvers" and isinstance(provider, str):
        classes += getattr(plugins.lookup("dns_providers", provider), "settings_classes", ())
    return {f.name for cls in classes for f in dataclasses.fields(cls) if f.metadata.get("secret")}


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
            return value, f"env {var}" + ("_FILE" if f"{var}_FILE" in env else "")
        return MISSING, ""
    if var and var in env:
        return env[var], f"env {var}"
    return MISSING, ""


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
        if base is tuple:
            items = [s.strip() for s in raw.split(",") if s.strip()] if isinstance(raw, str) else list(raw)
            return tuple(str(i) for i in items)
        if base in (dict, collections.abc.Mapping):
            if not isinstance(raw, Mapping):
                raise ValueError(raw)
            return {str(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"{plugin}: {origin} = {shown} is not a valid {_type_name(kind)}")


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        return f"{_type_name(args[0])} (optional)" if len(args) == 1 else str(kind)
    if typing.get_origin(kind) is tuple:
        return "list"
    if typing.get_origin(kind) in (dict, collections.abc.Mapping):
        return "table"
    name = getattr(kind, "__name__", None) or str(kind)
    return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(name, name)
