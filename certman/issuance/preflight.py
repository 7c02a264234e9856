"""Everything about a certificate that can be checked without its CA, checked before the first request.

``obtain`` (so ``issue``) and each certificate of ``renew`` run ``preflight`` before
they contact the CA (directory, account, ARI, order): a failed validation or a stored
certificate that no proxy takes costs CA rate limits and a run, a local check costs
nothing. It covers:

- each CA bundle is a readable file;
- identifiers the CA is known to refuse (``certman.ca.policy``), and a solver that
  cannot prove an identifier (``CertSpec``, e.g. a TLS-ALPN-01 wildcard);
- secret files and programs a solver reads when it is built (``create_solver``);
- every program a solver or reloader runs (reload argv[0], nginx ``binary``, the exec
  provider) exists and is executable, and every path it names is absolute;
- a webroot exists, is a directory, and is writable;
- a standalone or TLS-ALPN-01 address is on this host, a privileged port may be
  bound, and no other program holds the port (a certman run of the same keystore may:
  it is joined, ``certman.solvers.shared.check_free``).

A problem in the configuration is a ``ConfigError`` or ``UsageError`` (exit 2); a
webroot or listening address that cannot be used is a ``SolverError`` (exit 5), as it
would be at validation time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..ca.policy import check_policy
from ..config import CertSpec, check_ca_bundle, resolve_server
from ..plugins.settings import settings_classes
from ..solvers import Solver
from ..solvers.shared import Rendezvous
from .challenges import create_solver


def preflight(spec: CertSpec, *, rendezvous: Rendezvous | None = None, probe: bool = True) -> list[Solver]:
    """Check ``spec`` (recorded: absolute paths, resolved programs) and return its solvers.

    The solvers are built in the spec's order; one that serves a port shares it through
    ``rendezvous`` (the keystore's), so a port another run of that keystore serves passes.
    Without ``probe``, only the settings themselves are checked: no solver checks its
    address, port or webroot (`renew --check`, which may run beside the timer's renew).
    Raises ``UsageError``/``ConfigError`` (exit 2) or ``SolverError`` (exit 5).
    """
    check_policy(spec.identifiers, spec.profile, [resolve_server(s) for s in _servers(spec)])
    for bundle in (spec.ca_bundle, *(f.get("ca_bundle") for f in spec.fallback)):
        check_ca_bundle(bundle)
    built = [create_solver(s.name, s.options, rendezvous) for s in spec.solvers]
    for solver_spec, solver in zip(spec.solvers, built, strict=True):
        _check_files("solvers", solver_spec.name, solver_spec.options, f"solver {solver_spec.name}")
        if probe:
            _check_solver(solver)
    if spec.reloaders:
        from ..deploy.batch import check_reloaders

        check_reloaders(spec)
        for table in spec.reloaders:
            name = str(table.get("name", ""))
            _check_files("reloaders", name, table, f"reloader {name}")
    return built


def _servers(spec: CertSpec) -> list[str]:
    return [spec.server, *(str(f["server"]) for f in spec.fallback)]


def _check_files(kind: str, name: str, options: Mapping[str, Any], what: str) -> None:
    from ..plugins.files import file_problems

    # Only the options themselves: a value a plugin reads from the environment is the run's, not the record's.
    problems, _ = file_problems(settings_classes(kind, name, options), options, {}, recorded=True)
    if problems:
        raise type(problems[0])(f"{what}: {problems[0].message}", problems[0].hint)


def _check_solver(solver: Solver) -> None:
    # A solver that can check itself locally says so with a ``preflight`` method (the
    # built-in ones do); built by name, it is not imported here only to be recognised.
    check = getattr(solver, "preflight", None)
    if callable(check):
        check()
