"""What doctor looks at: the settings every command would load, and each certificate renew would touch.

The settings come from ``load_settings``, as for every other command. When the config
file is invalid, doctor still resolves the keystore as the other commands would
(flag, then ``CERTMAN_KEYSTORE``, then the file's ``keystore``), so it never checks
a default keystore that nothing else would use.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import (
    CertSpec,
    Settings,
    SolverSpec,
    load_settings,
    solver_from_settings,
    solvers_from_tables,
)
from ..errors import CertmanError
from ..paths import default_config_path
from ..settings_fallback import settings_without_config
from .report import Check


@dataclass(frozen=True)
class Scope:
    settings: Settings
    env: Mapping[str, str]
    config: Check
    # Per keystore name, the spec renew would apply: a certman.toml declaration wins over the record.
    certificates: Mapping[str, CertSpec]
    # The solvers `certman issue` with these settings would use for a new certificate.
    new_solvers: tuple[SolverSpec, ...]
    # Stored specs that cannot be read and declarations or solvers that issue or renew would reject.
    rejected: tuple[Check, ...]


def load_scope(
    config_path: Path | None, *, overrides: Mapping[str, Any] | None, env: Mapping[str, str] | None
) -> Scope:
    """The settings and certificates certman would use with this config, environment and flags."""
    env = os.environ if env is None else env
    source = _config_path(config_path, env)
    try:
        settings = load_settings(config_path, env=env, overrides=overrides)
        config = Check("config", True, f"{source} is valid" if source.exists() else _no_file(source))
    except CertmanError as exc:
        config = Check("config", False, exc.message, exc.hint)
        settings = settings_without_config(source, env, overrides or {})
    rejected: list[Check] = []
    certificates = {spec.name: spec for spec in _stored_specs(settings.keystore, rejected)}
    certificates.update((spec.name, spec) for spec in _declared_specs(settings, rejected))
    return Scope(settings, env, config, certificates, _new_solvers(settings, rejected), tuple(rejected))


def _config_path(config_path: Path | None, env: Mapping[str, str]) -> Path:
    return config_path or (Path(env["CERTMAN_CONFIG"]) if env.get("CERTMAN_CONFIG") else default_config_path())


def _no_file(path: Path) -> str:
    return f"no {path}; using defaults, CERTMAN_* and flags"


def _stored_specs(root: Path, rejected: list[Check]) -> list[CertSpec]:
    """The specs in the keystore, read without creating anything (doctor must not write)."""
    specs = []
    for path in sorted((root / "certs").glob("*/spec.toml")):
        try:
            with open(path, "rb") as fh:
                specs.append(CertSpec.from_dict(tomllib.load(fh), str(path)))
        except OSError as exc:
            rejected.append(Check(f"certificate {path.parent.name}", False, f"cannot read {path}: {exc.strerror}"))
        except tomllib.TOMLDecodeError as exc:
            rejected.append(Check(f"certificate {path.parent.name}", False, f"{path} is not valid TOML: {exc}"))
        except CertmanError as exc:
            rejected.append(Check(f"certificate {path.parent.name}", False, exc.message, exc.hint))
    return specs


def _declared_specs(settings: Settings, rejected: list[Check]) -> list[CertSpec]:
    """Each ``[[certificate]]`` table as renew reads it; a table renew rejects is a FAIL of its own."""
    from ..renewal.declared import declared_spec

    specs = []
    for index, table in enumerate(settings.certificates):
        try:
            specs.append(declared_spec(table, settings, index))
        except CertmanError as exc:
            rejected.append(Check(f"certificate #{index + 1}", False, exc.message, exc.hint))
    return specs


def _new_solvers(settings: Settings, rejected: list[Check]) -> tuple[SolverSpec, ...]:
    """``[[solver]]`` tables and the run-wide solver (--solver, --http-port ...), as issue reads them."""
    found: list[SolverSpec] = []
    try:
        found += solvers_from_tables(settings.solvers, "config")
    except CertmanError as exc:
        rejected.append(Check("solver", False, exc.message, exc.hint))
    try:
        found.append(solver_from_settings(settings))
    except CertmanError as exc:
        rejected.append(Check(f"solver {settings.solver}", False, exc.message, exc.hint))
    return tuple(found)
