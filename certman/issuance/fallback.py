"""CA fallback: when a certificate's CA fails after its own retries, try the next one it lists.

``issuance.issue.obtain`` runs the loop under the certificate lock.

Each CA has its own account in the keystore (``accounts/<ca-id>/``), registered on
first use or beforehand with ``certman account register`` (for a CA that needs
EAB). Only CA-side failures (``ACMEError``: unreachable, rate-limited, refused) move
on to the next CA; a solver, keystore or usage error would fail the same way
everywhere, so it stops at once.

The spec keeps its order of preference: after a fallback CA issues, ``spec.toml``
is restored to the original, so the next renewal starts with the first CA again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from ..config import CertSpec
from ..errors import ACMEError
from ..keystore import FileKeystore

log = logging.getLogger(__name__)

T = TypeVar("T")


def endpoints(spec: CertSpec) -> list[dict[str, Any]]:
    """Every CA of ``spec`` in order of preference, as {"server", "ca_bundle"}."""
    first = {"server": spec.server, "ca_bundle": spec.ca_bundle}
    return [first, *({"server": f["server"], "ca_bundle": f.get("ca_bundle")} for f in spec.fallback)]


def _attempt_spec(spec: CertSpec, index: int) -> CertSpec:
    if index == 0:
        return spec
    cas = endpoints(spec)
    chosen = cas.pop(index)
    # If the run dies before spec.toml is restored, the stored spec still lists every CA.
    others = tuple({k: v for k, v in ca.items() if v is not None} for ca in cas)
    return replace(spec, server=chosen["server"], ca_bundle=chosen["ca_bundle"], fallback=others)


def first_that_issues(
    spec: CertSpec,
    keystore: FileKeystore,
    attempt: Callable[[CertSpec, str | None], T],
    replaces: str | None = None,
    issued_by: str | None = None,
) -> T:
    """``attempt(spec_at_ca, replaces)`` against each CA of ``spec`` in turn until one issues.

    The caller holds ``lock_cert(spec.name)``: the whole loop is one obtain, so another
    run never sees a certificate half-way between two CAs. ``replaces`` (the ARI CertID,
    RFC 9773 §5) goes only to the CA that issued the live version (``issued_by``, its directory
    URL from the index entry; None: the spec's first CA). Raises the
    ``ACMEError`` of a single CA, or one naming every CA's failure; any other error at
    once.
    """
    cas = endpoints(spec)
    issued_by = issued_by or spec.server
    failures: list[str] = []
    for index, ca in enumerate(cas):
        at_ca = _attempt_spec(spec, index)
        # An ARI "replaces" names the live certificate, which only the CA that issued it knows.
        try:
            result = attempt(at_ca, replaces if ca["server"] == issued_by else None)
        except ACMEError as exc:
            if len(cas) == 1:
                raise
            failures.append(f"{ca['server']}: {exc.message}")
            if index == len(cas) - 1:
                raise ACMEError(
                    f"every CA failed for {spec.name}: " + "; ".join(failures), exc.hint or "the next run tries again"
                ) from exc
            log.warning(
                "%s failed at %s (%s); trying %s", spec.name, ca["server"], exc.message, cas[index + 1]["server"]
            )
            continue
        if at_ca is not spec:
            log.warning("%s was issued by the fallback CA %s", spec.name, ca["server"])
            keystore.write_spec(spec)
        return result
    raise AssertionError("unreachable: the loop returns or raises")
