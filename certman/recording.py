"""A certificate's declaration as certman records it: every path absolute, every program resolved.

spec.toml must hold all that a renewal needs in a bare environment (cron: ``cd /``,
``PATH=/usr/bin:/bin``). So, when a declaration is recorded:

- a CA bundle, a webroot, a secret file (``<secret>_file``) and every other option a
  plugin's settings mark as a path become absolute (``certman.paths.absolute``);
- a program (argv[0] of a reload command, the nginx ``binary``) given by a bare name
  is resolved through PATH and the system directories, and a name found nowhere is a
  ``UsageError`` (exit 2) before anything is ordered.

Recording is idempotent, so a stored spec and a fresh declaration compare in this
normalised form: resolving a path never looks like a change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CertmanError
from .paths import absolute, record_program
from .plugins.settings import recorded_kinds, settings_classes

if TYPE_CHECKING:
    from .config import CertSpec

# Run-wide settings naming a file or directory: a relative one is resolved against the
# config file's directory, or the current directory for a flag or variable.
PATH_SETTINGS = ("ca_bundle", "keystore", "webroot", "log_file", "notify_file", "store_key_file")


def recorded_options(
    kind: str, table: Mapping[str, Any], base: Path | None = None, *, origin: str, programs: bool = True
) -> dict[str, Any]:
    """A ``[[solver]]`` or ``[[reloader]]`` table (``kind`` "solvers" or "reloaders") as recorded.

    Paths are made absolute against ``base`` (default: the cwd). With ``programs``
    False, a bare program name is left for later (a config file is read before the
    run's PATH matters), but ``./reload.sh`` is still made absolute against ``base``.
    An unknown plugin's table is returned as it is: it is rejected where it is built.
    """
    recorded = dict(table)
    for option, how in _kinds(kind, table).items():
        value = recorded.get(option)
        if how == "path" and isinstance(value, (str, os.PathLike)) and str(value):
            recorded[option] = absolute(value, base)
        elif how == "program" and isinstance(value, str) and value:
            recorded[option] = _program(value, f"{origin}: {option}", base, programs)
        elif how == "argv" and isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            recorded[option] = [_program(value[0], f"{origin}: {option}", base, programs), *value[1:]]
    return recorded


def recorded_spec(spec: CertSpec, base: Path | None = None) -> CertSpec:
    """``spec`` as spec.toml records it (see the module docstring); idempotent.

    Raises ``UsageError`` (exit 2) for a program found neither on PATH nor in the
    system directories.
    """
    origin = f"certificate {spec.name}"

    def solver_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        table = recorded_options("solvers", {**options, "name": name}, base, origin=f"{origin}: solver {name}")
        return {k: v for k, v in table.items() if k != "name"}

    return replace(
        spec,
        ca_bundle=absolute(spec.ca_bundle, base) if spec.ca_bundle else None,
        fallback=tuple(
            {**entry, "ca_bundle": absolute(entry["ca_bundle"], base)} if entry.get("ca_bundle") else entry
            for entry in spec.fallback
        ),
        solvers=tuple(replace(s, options=solver_options(s.name, s.options)) for s in spec.solvers),
        reloaders=tuple(
            recorded_options("reloaders", r, base, origin=f"{origin}: reloader {r.get('name')}") for r in spec.reloaders
        ),
    )


def config_relative(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """The settings ``values`` read from the config file in ``base``, their paths (also in
    ``[[solver]]`` and ``[[certificate]]`` tables) made absolute against ``base``."""
    for key in PATH_SETTINGS:
        if values.get(key, "") != "":  # "" is a value of its own (log_file = "": no log)
            values[key] = (Path if key == "keystore" else str)(absolute(values[key], base))
    solvers = values.get("solvers", ())
    values["solvers"] = tuple(recorded_options("solvers", t, base, origin="config", programs=False) for t in solvers)
    values["certificates"] = tuple(recorded_certificate_table(t, base) for t in values.get("certificates", ()))
    return values


def recorded_certificate_table(table: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """A ``[[certificate]]`` table of the config file in ``base``, its paths made absolute against ``base``."""
    recorded = dict(table)
    if isinstance(table.get("ca_bundle"), str):
        recorded["ca_bundle"] = absolute(table["ca_bundle"], base)
    for key, kind in (("solver", "solvers"), ("reloader", "reloaders")):
        tables = table.get(key)
        if isinstance(tables, list):
            recorded[key] = [
                recorded_options(kind, t, base, origin="certman.toml", programs=False) if isinstance(t, Mapping) else t
                for t in tables
            ]
    return recorded


def _program(value: str, origin: str, base: Path | None, resolve_bare: bool) -> str:
    if os.sep not in value and not resolve_bare:
        return value
    return record_program(value, origin, base)


def _kinds(kind: str, table: Mapping[str, Any]) -> dict[str, str]:
    """Which options of the plugin ``table`` names hold a path, a program or an argv."""
    try:
        classes = settings_classes(kind, str(table.get("name", "")), table)
    except CertmanError:
        return {}
    kinds: dict[str, str] = {}
    for cls in classes:
        kinds.update(recorded_kinds(cls))
    return kinds
