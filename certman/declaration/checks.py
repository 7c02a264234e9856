"""The checks a certificate's settings pass before anything is ordered or recorded."""

from __future__ import annotations

from ..config import CertSpec
from ..recording import recorded_spec
from ..solvers.shared import Rendezvous


def check_spec(spec: CertSpec, *, rendezvous: Rendezvous | None = None, probe: bool = True) -> CertSpec:
    """``spec`` as recorded (``certman.recording``), once it passes ``issuance.preflight``.

    The very checks `certman issue` and `certman renew` make before their first request
    to the CA, so `certman reconfigure` writes nothing they would refuse. Raises
    ``UsageError``/``ConfigError`` (exit 2) naming the bad setting, or ``SolverError``
    (exit 5) for a webroot or listening address that cannot be used, or a port another
    program holds (one that a run of the keystore of ``rendezvous`` serves passes).
    Without ``probe``, only the settings are checked (``issuance.preflight``).
    """
    from ..issuance.preflight import preflight

    spec = recorded_spec(spec)
    preflight(spec, rendezvous=rendezvous, probe=probe)
    return spec
