"""What a deploy did: each reloader call and each verify check, and the error per certificate.

Kept apart from ``batch`` (which runs the reloaders) so that a caller reporting an
outcome, such as ``issue`` for a certificate without reloaders, loads no proxy code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ..errors import CertmanError, ReloadError

if TYPE_CHECKING:
    from .served import ServedCheck


class ReloadRun(msgspec.Struct, frozen=True):
    """One reloader call: the table's ``name``, the certificates it was given, its error if any,
    and the certificates that error is about (``failed``: all of ``names`` unless the
    reloader said which ones it could not hand over)."""

    reloader: str
    names: tuple[str, ...]
    error: str | None = None
    failed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"reloader": self.reloader, "names": list(self.names), "error": self.error, "failed": list(self.failed)}


class DeployResult(msgspec.Struct, frozen=True):
    """The outcome of handing certificates to their proxies.

    ``errors``: per certificate name, None when every reloader took it and every
    ``verify`` endpoint served it, else the first error. ``reloads``: each reloader
    call, in order. ``checks``: the final TLS check of each ``verify`` endpoint.
    """

    errors: Mapping[str, CertmanError | None]
    reloads: tuple[ReloadRun, ...] = ()
    checks: tuple[ServedCheck, ...] = ()

    @property
    def failed(self) -> list[str]:
        return sorted(name for name, error in self.errors.items() if error is not None)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reloads": [r.to_dict() for r in self.reloads],
            "checks": [
                {
                    "name": c.name,
                    "endpoint": str(c.endpoint),
                    "stored_serial": c.stored_serial,
                    "served_serial": c.served_serial,
                    "ok": c.is_ok,
                    "error": c.error,
                }
                for c in self.checks
            ],
            "errors": {name: error.message for name, error in sorted(self.errors.items()) if error is not None},
        }


def not_deployed(name: str, outcome: DeployResult) -> ReloadError | None:
    """The exit-6 error for certificate ``name`` stored but not taken by its proxy, if it was not."""
    error = outcome.errors.get(name)
    if error is None:
        return None
    return ReloadError(
        f"{name} is stored, but not deployed: {error.message}",
        error.hint or "fix the proxy; `certman renew` retries the reload without issuing",
    )
