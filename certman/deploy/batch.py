"""Hand freshly stored certificates to their proxies: each distinct reloader once per batch.

Certificates that share a reloader table (same name and options) are reloaded by one
call, so ten renewed certificates behind one nginx cost one ``nginx -s reload``. Every
reloader call has a timeout. When the table lists ``verify`` endpoints, a reload only
counts once a TLS handshake with SNI shows the proxy serving the new leaf. The caller
records the outcome per certificate in its state ("issued, not deployed"), so the next
run retries the reload without issuing.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from msgspec import structs

from .. import progress
from ..config import CertSpec
from ..errors import CertmanError, ReloadError, ReloadPartlyFailed, UsageError
from ..keystore import DeployState, FileKeystore
from ..keystore.times import Clock, utc_now
from ..plugins import registry as plugins
from .outcome import DeployResult, ReloadRun
from .reloaders import Deployment, Reloader
from .served import DEFAULT_TIMEOUT as VERIFY_TIMEOUT
from .served import ServedCheck, check_served, endpoints_from_options, verify_error

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0


def deployment_of(keystore: FileKeystore, spec: CertSpec, serial: str) -> Deployment:
    return Deployment(
        name=spec.name,
        identifiers=tuple(i.value for i in spec.identifiers),
        serial=serial,
        live=keystore.live(spec.name),
    )


def create_reloader(table: Mapping[str, Any]) -> Reloader:
    """The reloader a ``[[reloader]]`` table describes; a bad table is a UsageError."""
    options = {k: v for k, v in table.items() if k != "name"}
    factory = plugins.lookup("reloaders", str(table.get("name", "")))
    try:
        reloader: Reloader = factory.from_options(options)
    except CertmanError:
        raise
    except Exception as exc:  # a third-party reloader's own validation
        raise UsageError(f"reloader {table.get('name')!r}: invalid options: {type(exc).__name__}: {exc}") from exc
    return reloader


def check_reloaders(spec: CertSpec) -> None:
    """Build every reloader of ``spec`` once, so a bad table fails before a certificate is ordered."""
    for table in spec.reloaders:
        create_reloader(table)


def test_configs(spec: CertSpec) -> tuple[str, ...]:
    """Run each distinct reloader's configuration test (``nginx -t``, ``haproxy -c``), never a
    reload: what a dry run does. One line per reloader saying what was tested.

    Raises ``ReloadError`` (exit 6, as the real reload would) for the first test that fails.
    """
    from .reloaders import TestsConfig

    lines: dict[str, str] = {}
    for table in spec.reloaders:
        without_verify = {k: v for k, v in table.items() if k != "verify"}
        key = json.dumps(without_verify, sort_keys=True, default=str)
        if key in lines:
            continue
        name = str(table.get("name"))
        reloader = create_reloader(table)
        if not isinstance(reloader, TestsConfig):
            lines[key] = f"reloader {name}: no configuration test; not reloaded"
            continue
        try:
            reloader.test_config()
        except CertmanError:
            raise
        except Exception as exc:  # a third-party reloader's own failure
            raise ReloadError(f"reloader {name}: configuration test failed: {type(exc).__name__}: {exc}") from exc
        lines[key] = f"reloader {name}: configuration test passed; not reloaded"
    return tuple(lines.values())


def deploy(items: Sequence[tuple[CertSpec, Deployment]], *, timeout: float = DEFAULT_TIMEOUT) -> DeployResult:
    """Run every distinct reloader of ``items`` once with all the certificates it serves.

    Tables that differ only in their ``verify`` endpoints are one proxy: it is reloaded
    once, and each certificate is then checked at its own table's endpoints.
    """
    errors: dict[str, CertmanError | None] = {spec.name: None for spec, _ in items}
    groups: dict[str, tuple[Mapping[str, Any], list[tuple[Deployment, Mapping[str, Any]]]]] = {}
    for spec, deployment in items:
        for table in spec.reloaders:
            without_verify = {k: v for k, v in table.items() if k != "verify"}
            key = json.dumps(without_verify, sort_keys=True, default=str)
            groups.setdefault(key, (without_verify, []))[1].append((deployment, table))
    reloads: list[ReloadRun] = []
    checks: list[ServedCheck] = []
    for proxy, members in groups.values():
        deployments = [d for d, _ in members]
        reloader = str(proxy.get("name"))
        names = tuple(d.name for d in deployments)
        # Each error lands on the certificates it is about: a reloader that took some of
        # its certificates names the others (ReloadPartlyFailed); any other error is the
        # whole call's.
        refused: dict[str, CertmanError] = {}
        try:
            _run_with_timeout(create_reloader(proxy), deployments, timeout, reloader)
        except ReloadPartlyFailed as exc:
            refused = {n: e for n, e in exc.failed.items() if n in names} or dict.fromkeys(names, exc)
        except CertmanError as exc:
            refused = dict.fromkeys(names, exc)
        if refused:
            distinct = {id(e): e for e in refused.values()}
            message = next(iter(distinct.values())).message if len(distinct) == 1 else _per_name(refused)
            log.info("reloader %s failed for %s: %s", reloader, ", ".join(refused), message)
            reloads.append(ReloadRun(reloader, names, message, tuple(refused)))
        else:
            reloads.append(ReloadRun(reloader, names))
        for name, error in refused.items():
            errors[name] = errors[name] or error
        for deployment, table in members:
            if deployment.name in refused:
                continue
            endpoints = endpoints_from_options(table)
            if not endpoints:
                continue
            try:
                served = check_served(deployment, endpoints)
            except CertmanError as exc:
                errors[deployment.name] = errors[deployment.name] or exc
                continue
            checks.extend(served)
            failed = next((c for c in served if not c.is_ok), None)
            if failed is not None:
                errors[deployment.name] = errors[deployment.name] or verify_error(failed, VERIFY_TIMEOUT)
    return DeployResult(errors, tuple(reloads), tuple(checks))


def _per_name(failed: Mapping[str, CertmanError]) -> str:
    return "; ".join(f"{name}: {error.message}" for name, error in failed.items())


def _run_with_timeout(reloader: Reloader, deployments: list[Deployment], timeout: float, name: str) -> None:
    # A reloader is third-party code too: waiting on it in a worker bounds the run even
    # if it hangs (the thread is abandoned, the run reports the reload as failed).
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"reload-{name}")
    try:
        future = pool.submit(reloader.reload, deployments)
        try:
            with progress.waiting(f"the {name} reload ({', '.join(d.name for d in deployments)})"):
                future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise ReloadError(
                f"reloader {name} did not finish within {timeout:g} s",
                "check the proxy; the next run retries the reload",
            ) from None
        except CertmanError:
            raise
        except Exception as exc:
            raise ReloadError(f"reloader {name} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        pool.shutdown(wait=False)


def deploy_issued(
    keystore: FileKeystore,
    spec: CertSpec,
    serial: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    clock: Clock = utc_now,
) -> DeployResult:
    """Run the reloaders of one just-issued certificate and record the outcome in its state,
    so that a failed reload is retried by the next `certman renew` without issuing again.

    ``timeout`` bounds each reloader call (seconds). A failed reload or verification is
    returned in the result, not raised: the certificate is stored either way.
    """
    if not spec.reloaders:
        return DeployResult({})
    # Pending before the first reload starts, so that a run interrupted mid-reload
    # (SIGTERM, a crash) leaves the mark the next `certman renew` retries from.
    pending = structs.replace(keystore.read_state(spec.name), deploy=DeployState(True, serial, None, clock()))
    keystore.write_state(spec.name, pending)
    outcome = deploy([(spec, deployment_of(keystore, spec, serial))], timeout=timeout)
    error = outcome.errors[spec.name]
    deployed = DeployState(error is not None, serial, error.message if error else None, clock())
    state = structs.replace(pending, deploy=deployed)
    keystore.write_state(spec.name, state)
    keystore.mark_states({spec.name: state})
    return outcome


def reload_command_table(argv_json: str) -> dict[str, Any]:
    """The ``command`` reloader table for ``--reload-cmd '["prog", "arg"]'``.

    JSON, not a shell-like string: an argv list is unambiguous and never meets a shell.
    """
    try:
        argv = json.loads(argv_json)
    except ValueError:
        argv = None
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise UsageError(
            f"--reload-cmd {argv_json!r} is not a JSON list of strings",
            """write it as a JSON argv list, e.g. --reload-cmd '["systemctl", "reload", "nginx"]'""",
        )
    return {"name": "command", "argv": argv}
