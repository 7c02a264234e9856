"""``certman doctor``: one line per check of what a renewal will need, before it needs it.

Doctor builds what ``issue`` and ``renew`` build, with the same functions: server
aliases through ``config.resolve_server``, solvers and reloaders by name through the
plugin registry with their settings, the keystore as every command resolves it. So a
typo those commands reject is a FAIL line here, and the other checks still run.

Checks are read-only apart from a probe file in a webroot (removed at once) and a
listening socket opened and closed on each standalone port. Each check function takes
the ``Scope`` (settings and certificates) and yields ``Check`` lines; none raises, so one
broken part never hides the state of the others. A new check is one more function in
``CHECKS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .keystore import check_keystore, keystore_checks
from .logs import log_checks
from .network import ca_checks, check_ca, check_proxy
from .notifications import notify_checks
from .plugins import check_webroot, reloader_checks, solver_checks
from .ports import check_port
from .report import Check, DoctorReport
from .scope import Scope, load_scope

__all__ = [
    "CHECKS",
    "Check",
    "DoctorReport",
    "check_ca",
    "check_keystore",
    "check_port",
    "check_proxy",
    "check_webroot",
    "diagnose",
]


def config_checks(scope: Scope) -> Iterator[Check]:
    """The config line, then each stored spec, declaration or solver setting a run would reject,
    then each certificate whose identifiers its CA is known to refuse (as ``preflight`` does)."""
    from ..ca.policy import check_policy
    from ..config import resolve_server
    from ..errors import CertmanError

    yield scope.config
    yield from scope.rejected
    for name, spec in scope.certificates.items():
        try:
            servers = [spec.server, *(str(f["server"]) for f in spec.fallback)]
            check_policy(spec.identifiers, spec.profile, [resolve_server(s) for s in servers])
        except CertmanError as exc:
            yield Check(f"certificate {name}", False, exc.message, exc.hint)


# In the order the lines are printed.
CHECKS: tuple[Callable[[Scope], Iterable[Check]], ...] = (
    config_checks,
    keystore_checks,
    ca_checks,
    solver_checks,
    reloader_checks,
    log_checks,
    notify_checks,
)


def diagnose(
    config_path: Path | None = None, *, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
) -> DoctorReport:
    """Run every check of ``CHECKS`` for the setup certman would use with this config, env and flags.

    ``overrides`` are the flags (``load_settings``'s overrides); ``env`` defaults to
    ``os.environ``. Never raises a ``CertmanError``: each problem is a failed ``Check``.
    """
    scope = load_scope(config_path, overrides=overrides, env=env)
    return DoctorReport(tuple(check for each in CHECKS for check in each(scope)))
