"""The settings an operator gives for one certificate, applied to what is stored.

``certman issue`` and ``certman reconfigure`` describe a ``SpecChange``: a field left
None (or empty) keeps what the record holds, so a reloader, a solver or a renew window
set once stays until the operator changes it. Reloaders are replaced by kind: a given
``nginx`` reloader replaces the stored ``nginx`` one and keeps the others.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import msgspec

from ..config import CertSpec, Settings, SolverSpec, check_ca_bundle, resolve_server, solver_from_settings
from ..errors import UsageError
from ..names import Identifier

# Flags that set one option of one solver kind: flag -> (solver, option).
SOLVER_OPTION_FLAGS = {
    "http_address": ("standalone", "address"),
    "http_port": ("standalone", "port"),
    "webroot": ("webroot", "path"),
    "tls_address": ("tls-alpn-01", "address"),
    "tls_port": ("tls-alpn-01", "port"),
}


class SpecChange(msgspec.Struct, frozen=True):
    """What the operator gave for one certificate; None or empty keeps the stored value.

    ``solver_options`` is (solver kind, options): merged into the stored solver of that
    kind, or that solver with these options when the record has another kind.
    ``profile`` and ``preferred_chain`` "" clear them; ``renew_before_days`` 0 returns
    to the lifetime rule (days). ``fallback_servers`` share the resulting CA bundle.
    """

    identifiers: tuple[Identifier, ...] | None = None
    server: str | None = None
    ca_bundle: str | None = None
    key_type: str | None = None
    solvers: tuple[SolverSpec, ...] | None = None
    solver_options: tuple[str, Mapping[str, Any]] | None = None
    profile: str | None = None
    preferred_chain: str | None = None
    fallback_servers: tuple[str, ...] | None = None
    renew_before_days: float | None = None
    reloaders: tuple[Mapping[str, Any], ...] = ()
    remove_reloaders: tuple[str, ...] = ()


def apply_change(spec: CertSpec, change: SpecChange) -> CertSpec:
    """``spec`` with every setting ``change`` gives; ``UsageError`` (exit 2) for an invalid result."""
    updated = replace(
        spec,
        identifiers=change.identifiers if change.identifiers is not None else spec.identifiers,
        server=change.server if change.server is not None else spec.server,
        ca_bundle=change.ca_bundle if change.ca_bundle is not None else spec.ca_bundle,
        key_type=change.key_type if change.key_type is not None else spec.key_type,
        solvers=_solvers(spec, change),
        profile=_cleared(change.profile, spec.profile),
        preferred_chain=_cleared(change.preferred_chain, spec.preferred_chain),
        renew_before_days=_renew_before(change.renew_before_days, spec.renew_before_days),
        reloaders=_reloaders(spec, change),
    )
    if change.fallback_servers is not None:
        bundle = {"ca_bundle": updated.ca_bundle} if updated.ca_bundle else {}
        updated = replace(updated, fallback=tuple({"server": s, **bundle} for s in change.fallback_servers))
    return updated


def change_from_flags(
    given: Mapping[str, Any],
    settings: Settings,
    *,
    identifiers: tuple[Identifier, ...] | None = None,
    reloaders: Sequence[Mapping[str, Any]] = (),
    remove_reloaders: Sequence[str] = (),
    fallback_servers: Sequence[str] = (),
) -> SpecChange:
    """The change that the flags in ``given`` (flag name -> value, only those on the
    command line) describe; values are taken from ``settings``, which merged them.

    ``UsageError`` (exit 2) for options of two solver kinds, or a CA bundle that cannot be read.
    """
    solvers = None
    solver_options = None
    if "solver" in given or "dns_provider" in given:
        solvers = (solver_from_settings(settings),)
    else:
        kinds = {SOLVER_OPTION_FLAGS[f][0] for f in given if f in SOLVER_OPTION_FLAGS}
        if len(kinds) > 1:
            raise UsageError(
                f"options of several solvers given ({', '.join(sorted(kinds))})",
                "give the options of one solver, or --solver to choose it",
            )
        if kinds:
            [kind] = kinds
            options = {opt: getattr(settings, f) for f, (k, opt) in SOLVER_OPTION_FLAGS.items() if f in given}
            solver_options = (kind, options)
    return SpecChange(
        identifiers=identifiers,
        server=resolve_server(str(given["server"])) if "server" in given else None,
        ca_bundle=check_ca_bundle(settings.ca_bundle) if "ca_bundle" in given else None,
        key_type=settings.key_type if "key_type" in given else None,
        solvers=solvers,
        solver_options=solver_options,
        profile=given.get("profile"),
        preferred_chain=given.get("preferred_chain"),
        fallback_servers=tuple(fallback_servers) or None,
        renew_before_days=given.get("renew_before_days"),
        reloaders=tuple(reloaders),
        remove_reloaders=tuple(remove_reloaders),
    )


def reloader_tables(kinds: Sequence[str], options: Sequence[str]) -> tuple[dict[str, Any], ...]:
    """``[[reloader]]`` tables from ``--reloader KIND`` and ``--reloader-option [KIND.]KEY=VALUE``.

    A value that reads as JSON (a number, a list, true) is taken as such, else as a
    string; a key given twice is a list. An unprefixed option needs exactly one
    ``--reloader``. ``UsageError`` (exit 2) for anything else.
    """
    tables: dict[str, dict[str, Any]] = {kind: {"name": kind} for kind in kinds}
    for option in options:
        key, sep, raw = option.partition("=")
        kind, dot, key = key.rpartition(".") if "." in key else ("", "", key)
        if not sep or not key:
            raise UsageError(
                f"--reloader-option {option!r} is not KEY=VALUE", "e.g. --reloader-option verify=127.0.0.1:443"
            )
        if not dot:
            if len(tables) != 1:
                raise UsageError(
                    f"--reloader-option {option!r} names no reloader, and {len(tables)} are given",
                    "prefix it with the reloader's kind, e.g. --reloader-option nginx.verify=127.0.0.1:443",
                )
            [kind] = tables
        if kind not in tables:
            raise UsageError(f"--reloader-option {option!r} is for {kind!r}, not given with --reloader")
        table, value = tables[kind], _value(raw)
        if key in table:
            table[key] = [*(table[key] if isinstance(table[key], list) else [table[key]]), value]
        else:
            table[key] = value
    return tuple(tables.values())


def _value(raw: str) -> Any:
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, list | int | float | bool) else raw


def _cleared(given: str | None, stored: str | None) -> str | None:
    if given is None:
        return stored
    return given or None


def _renew_before(given: float | None, stored: float | None) -> float | None:
    if given is None:
        return stored
    if not math.isfinite(given) or given < 0:
        raise UsageError(
            f"--renew-before-days {given:g} must be a positive number of days", "or 0 for the lifetime rule"
        )
    return float(given) or None


def _solvers(spec: CertSpec, change: SpecChange) -> tuple[SolverSpec, ...]:
    if change.solvers is not None:
        return change.solvers
    if change.solver_options is None:
        return spec.solvers
    kind, options = change.solver_options
    if any(s.name == kind for s in spec.solvers):
        return tuple(replace(s, options={**s.options, **options}) if s.name == kind else s for s in spec.solvers)
    return (SolverSpec(kind, dict(options)),)


def _reloaders(spec: CertSpec, change: SpecChange) -> tuple[Mapping[str, Any], ...]:
    stored = {str(r.get("name")) for r in spec.reloaders}
    unknown = [n for n in change.remove_reloaders if n not in stored]
    if unknown:
        raise UsageError(
            f"certificate {spec.name} has no {', '.join(unknown)} reloader to remove",
            f"its reloaders: {', '.join(sorted(stored)) or '(none)'}",
        )
    replaced = {str(r.get("name")) for r in change.reloaders} | set(change.remove_reloaders)
    return (*(r for r in spec.reloaders if r.get("name") not in replaced), *change.reloaders)
