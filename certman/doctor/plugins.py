"""Solvers and reloaders, built by name through the plugin registry as issue and renew build them.

A name or option issue would reject is a FAIL naming it. A plugin that builds is then
checked for what it will use: its programs under the timer's PATH, its files as
absolute paths, its listening port, its webroot, its proxy's endpoints.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..config import SolverSpec
from ..errors import CertmanError
from ..plugins.files import file_problems
from ..plugins.settings import settings_classes
from ..solvers import Solver
from .network import check_proxy
from .ports import check_port
from .report import Check, owners_text
from .scope import Scope


def solver_checks(scope: Scope) -> Iterator[Check]:
    """Each distinct solver of new certificates and of every stored and declared certificate."""
    from ..solvers.http01.webroot import WebrootSolver

    built = _built_solvers(scope)
    ports: dict[tuple[str, str, int], list[str]] = {}
    for solver, owners, made in built:
        if not isinstance(made, Check) and (where := _listens_on(made)) is not None:
            ports.setdefault((solver.name, *where), []).extend(owners)
    for solver, owners, made in built:
        if isinstance(made, Check):
            yield made
            continue
        classes = settings_classes("solvers", solver.name, solver.options)
        problems, _ = file_problems(classes, solver.options, scope.env, recorded=bool(owners))
        for problem in problems:
            yield Check(f"solver {solver.name}", False, problem.message + owners_text(owners), problem.hint)
        where = _listens_on(made)
        if where is not None:
            # One line per address and port, naming every certificate that needs it.
            if (key := (solver.name, *where)) in ports:
                yield check_port(solver.name, *where, owners=tuple(ports.pop(key)), keystore=scope.settings.keystore)
        elif isinstance(made, WebrootSolver):
            if not problems:
                yield check_webroot(made.settings.path)
        elif not problems:
            yield Check(f"solver {solver.name}", True, "configured, credentials present" + owners_text(owners))


def _built_solvers(scope: Scope) -> list[tuple[SolverSpec, tuple[str, ...], Solver | Check]]:
    """Each distinct solver, the certificates using it, and the solver as issuance builds it (or its FAIL)."""
    from ..issuance.challenges import create_solver

    uses = _distinct(
        [((s.name, dict(s.options)), s, None) for s in scope.new_solvers]
        + [((s.name, dict(s.options)), s, name) for name, spec in scope.certificates.items() for s in spec.solvers]
    )
    built: list[tuple[SolverSpec, tuple[str, ...], Solver | Check]] = []
    for solver, owners in uses:
        try:
            built.append((solver, owners, create_solver(solver.name, solver.options)))
        except CertmanError as exc:
            built.append((solver, owners, Check(f"solver {solver.name}", False, exc.message, exc.hint)))
    return built


def reloader_checks(scope: Scope) -> Iterator[Check]:
    """Each distinct reloader of every stored and declared certificate, then each proxy it verifies."""
    from ..deploy.batch import create_reloader
    from ..deploy.served import endpoints_from_options

    endpoints: dict[tuple[str, str, int], None] = {}
    uses = _distinct([(t, t, name) for name, spec in scope.certificates.items() for t in spec.reloaders])
    for table, owners in uses:
        reloader = str(table.get("name", "?"))
        try:
            create_reloader(table)
            found = endpoints_from_options(table)
            classes = settings_classes("reloaders", reloader, table)
        except CertmanError as exc:
            yield Check(f"reloader {reloader}", False, exc.message, exc.hint)
            continue
        problems, programs = file_problems(classes, table, {}, recorded=True)
        for problem in problems:
            yield Check(f"reloader {reloader}", False, problem.message + owners_text(owners), problem.hint)
        if not problems:
            runs = f"; runs {', '.join(map(str, programs))}" if programs else ""
            yield Check(f"reloader {reloader}", True, f"configured{runs}{owners_text(owners)}")
        endpoints.update(dict.fromkeys((reloader, e.host, e.port) for e in found))
    for reloader, host, port in endpoints:
        yield check_proxy(reloader, (host, port))


def check_webroot(path: Path) -> Check:
    """A file can be created (and removed) where the challenge files will go."""
    target = path / ".well-known" / "acme-challenge"
    probe_dir = next((p for p in (target, target.parent, path) if p.is_dir()), None)
    if probe_dir is None:
        return Check("webroot", False, f"{path} does not exist", "create it, or point --webroot at the document root")
    try:
        with tempfile.NamedTemporaryFile(dir=probe_dir, prefix=".certman-doctor-"):
            pass
    except OSError as exc:
        return Check(
            "webroot",
            False,
            f"cannot write in {probe_dir}: {exc.strerror}",
            "run certman as a user that may write the webroot",
        )
    return Check("webroot", True, f"{probe_dir} is writable")


def _listens_on(solver: Solver) -> tuple[str, int] | None:
    """The address and port a solver that answers on its own listening socket binds."""
    from ..solvers.http01.standalone import StandaloneSolver
    from ..solvers.tlsalpn01 import TLSALPN01Solver

    if isinstance(solver, (StandaloneSolver, TLSALPN01Solver)):
        return solver.settings.address, solver.settings.port
    return None


def _distinct(uses: Iterable[tuple[Any, Any, str | None]]) -> list[tuple[Any, tuple[str, ...]]]:
    """Each distinct item once, in first-seen order, with the certificates (``owner``) using it."""
    found: dict[str, tuple[Any, list[str]]] = {}
    for key, item, owner in uses:
        entry = found.setdefault(json.dumps(key, sort_keys=True, default=str), (item, []))
        if owner is not None and owner not in entry[1]:
            entry[1].append(owner)
    return [(item, tuple(owners)) for item, owners in found.values()]
