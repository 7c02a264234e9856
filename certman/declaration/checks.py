"""The checks a certificate's settings pass before anything is ordered or recorded."""

from __future__ import annotations

from ..config import CertSpec
from ..recording import recorded_spec


def check_spec(spec: CertSpec) -> CertSpec:
    """``spec`` as recorded (``certman.recording``), once every solver and reloader of it
    builds from its options.

    `certman issue` runs these checks before its first request to the CA, and
    `certman reconfigure` before it writes anything. Raises ``UsageError`` or
    ``ConfigError`` (exit 2) naming the bad setting.
    """
    from ..issuance.challenges import create_solver

    spec = recorded_spec(spec)
    for solver in spec.solvers:
        create_solver(solver.name, solver.options)
    if spec.reloaders:
        # Deferred: a certificate without reloaders loads no proxy code.
        from ..deploy.batch import check_reloaders

        check_reloaders(spec)
    return spec
