"""``certman doctor``: one line per check of what a renewal will need, before it needs it.

Checks are read-only apart from a probe file in a webroot (removed at once) and a
listening socket opened and closed on the standalone port. Each returns a
``Check``; none raises, so one broken part never hides the state of the others.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import CertSpec, Settings, check_ca_bundle, load_settings, resolve_server
from .errors import CertmanError
from .keystore.layout import SECRET_FILES

if TYPE_CHECKING:
    from .solvers import Solver

PROBE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str | None = None


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


def diagnose(
    config_path: Path | None = None, *, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> DoctorReport:
    """Run every check for the configuration certman would use with these flags."""
    checks: list[Check] = []
    env = os.environ if env is None else env
    try:
        settings = load_settings(config_path, env=env, overrides=overrides)
        checks.append(Check("config", True, _config_source(config_path, env)))
    except CertmanError as exc:
        checks.append(Check("config", False, exc.message, exc.hint))
        # Go on without the file, so the other checks still run.
        try:
            settings = load_settings(Path(os.devnull), env={}, overrides=overrides)
        except CertmanError:
            settings = Settings()
    checks.append(check_keystore(settings.keystore))
    specs = _stored_specs(settings.keystore)
    for server, bundle in _cas(settings, specs):
        checks.append(check_ca(server, bundle))
    for name, options in _solvers(settings, specs):
        checks.append(_check_solver(name, options))
    for spec in specs:
        for reloader in spec.reloaders:
            checks.extend(check_reloader(reloader))
    return DoctorReport(tuple(checks))


def _check_solver(name: str, options: Mapping[str, Any]) -> Check:
    """Build the solver from its settings as issuance would, then check what it will use."""
    from .solvers.http01.standalone import StandaloneSolver
    from .solvers.http01.webroot import WebrootSolver
    from .solvers.tlsalpn01 import TLSALPN01Solver

    try:
        solver = build_solver(name, options)
    except CertmanError as exc:
        return Check(f"solver {name}", False, exc.message, exc.hint)
    if isinstance(solver, (StandaloneSolver, TLSALPN01Solver)):
        return check_port(name, solver.settings.address, solver.settings.port)
    if isinstance(solver, WebrootSolver):
        return check_webroot(solver.settings.path)
    return Check(f"solver {name}", True, "configured, credentials present")


def _config_source(config_path: Path | None, env: Mapping[str, str]) -> str:
    from .paths import default_config_path

    path = config_path or (Path(env["CERTMAN_CONFIG"]) if env.get("CERTMAN_CONFIG") else default_config_path())
    if path.exists():
        return f"{path} is valid"
    return f"no {path}; using defaults, CERTMAN_* and flags"


def _stored_specs(root: Path) -> list[CertSpec]:
    """The specs in the keystore, read without creating anything (doctor must not write)."""
    import tomllib

    specs = []
    for path in sorted((root / "certs").glob("*/spec.toml")):
        try:
            with open(path, "rb") as fh:
                specs.append(CertSpec.from_dict(tomllib.load(fh), str(path)))
        except (OSError, tomllib.TOMLDecodeError, CertmanError):
            continue  # `certman show` names a broken spec; doctor checks what can be used
    return specs


def _cas(settings: Settings, specs: Iterable[CertSpec]) -> list[tuple[str, str | None]]:
    seen: dict[str, str | None] = {}
    try:
        seen[resolve_server(settings.server)] = settings.ca_bundle
    except CertmanError:
        pass
    for spec in specs:
        seen.setdefault(spec.directory_url, spec.ca_bundle)
        for entry in spec.fallback:
            seen.setdefault(resolve_server(entry["server"]), entry.get("ca_bundle"))
    return list(seen.items())


def _solvers(settings: Settings, specs: Iterable[CertSpec]) -> list[tuple[str, Mapping[str, Any]]]:
    from .config import SolverSpec, solver_from_settings, solvers_from_tables

    found: list[tuple[str, Mapping[str, Any]]] = []
    candidates: list[SolverSpec] = []
    try:
        # [[solver]] tables in certman.toml choose the solvers of new certificates.
        candidates += solvers_from_tables(settings.solvers, "config")
    except CertmanError:
        pass  # the config check above already failed on it
    try:
        candidates.append(solver_from_settings(settings))
    except CertmanError:
        pass
    candidates += [s for spec in specs for s in spec.solvers]
    for solver in candidates:
        item = (solver.name, dict(solver.options))
        if item not in found:
            found.append(item)
    return found


def check_keystore(root: Path) -> Check:
    """Owned by us, not writable by others, and every key file private."""
    if not root.exists():
        return Check("keystore", True, f"{root} does not exist yet; the first issue creates it (0700)")
    problems: list[str] = []
    uid = os.geteuid()
    count = 0
    for path in [root, *sorted(root.rglob("*"))]:
        try:
            st = os.lstat(path)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")
            continue
        count += 1
        if stat.S_ISLNK(st.st_mode):
            continue
        if st.st_uid != uid:
            problems.append(f"{path} is owned by uid {st.st_uid}, not {uid}")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            problems.append(f"{path} is writable by group or others ({stat.S_IMODE(st.st_mode):04o})")
        if path.name in SECRET_FILES and st.st_mode & 0o077:
            problems.append(f"{path} holds a key but is mode {stat.S_IMODE(st.st_mode):04o}, not 0600")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check(
            "keystore", False, problems[0] + more, f"chown -R {uid} {root}; chmod 700 directories and 600 key files"
        )
    return Check("keystore", True, f"{root}: {count} entries, owner and modes safe")


def check_ca(directory_url: str, ca_bundle: str | None) -> Check:
    """The directory answers over https, with a certificate we trust."""
    import requests

    name = f"CA {directory_url}"
    try:
        response = requests.get(directory_url, verify=ca_bundle or True, timeout=PROBE_TIMEOUT, allow_redirects=False)
    except requests.exceptions.SSLError:
        return Check(
            name,
            False,
            "its TLS certificate is not trusted",
            "pass --ca-bundle with the CA that signed the server's certificate",
        )
    except requests.exceptions.RequestException as exc:
        reason = "timed out" if isinstance(exc, requests.exceptions.Timeout) else "connection failed"
        return Check(name, False, f"unreachable ({reason})", "check the URL, DNS, firewall and proxy settings")
    except OSError as exc:
        # requests raises a bare OSError when the CA bundle cannot be loaded.
        try:
            check_ca_bundle(ca_bundle)
        except CertmanError as bad_bundle:
            return Check(name, False, bad_bundle.message, bad_bundle.hint)
        return Check(name, False, f"cannot connect: {exc}", "check --ca-bundle and the network settings")
    try:
        directory = response.json()
        ok = response.status_code == 200 and isinstance(directory, dict) and "newNonce" in directory
    except ValueError:
        ok = False
    if not ok:
        return Check(
            name,
            False,
            f"answered HTTP {response.status_code} without an ACME directory",
            "check that the URL is the CA's directory",
        )
    return Check(name, True, "reachable, TLS trusted, ACME directory served")


def check_port(solver: str, address: str, port: int) -> Check:
    """The solver's listening port can be bound now (then released)."""
    where = f"{address or '*'}:{port}"
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            hint = (
                "stop what holds it, or forward the challenge path from your proxy to a free port"
                if exc.errno == errno.EADDRINUSE
                else "run as root or choose a port above 1023"
            )
            return Check(f"{solver} port", False, f"cannot bind {where}: {exc.strerror}", hint)
    return Check(f"{solver} port", True, f"{where} is free to bind")


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


def build_solver(name: str, options: Mapping[str, Any]) -> Solver:
    """The solver ``name`` built from ``options`` through its settings, as issuance builds it.

    A DNS provider checks its credentials are present here. Raises the plugin's
    ConfigError (unknown option, bad value) or UsageError (unknown solver).
    """
    from .plugins import registry as plugins

    solver: Solver = plugins.lookup("solvers", name).from_options(dict(options))
    return solver


def check_reloader(table: Mapping[str, Any]) -> list[Check]:
    """A reloader table's ``verify`` endpoints, read as deploy reads them, each accept TCP connections."""
    from .deploy.served import endpoints_from_options

    name = str(table.get("name", "?"))
    try:
        endpoints = endpoints_from_options(table)
    except CertmanError as exc:
        return [Check(f"proxy {name}", False, exc.message, exc.hint)]
    return [check_proxy(name, (e.host, e.port)) for e in endpoints]


def check_proxy(reloader: str, endpoint: tuple[str, int]) -> Check:
    """The proxy a reloader verifies accepts TCP connections."""
    host, port = endpoint
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
    except OSError as exc:
        return Check(
            f"proxy {reloader}",
            False,
            f"{host}:{port} unreachable: {exc.strerror or exc}",
            "start the proxy, or fix the reloader's verify address",
        )
    return Check(f"proxy {reloader}", True, f"{host}:{port} accepts connections")
