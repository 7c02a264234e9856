"""``certman verify``: check what the proxies serve for certificates already in the keystore.

The endpoints come from the ``verify`` option of each certificate's reloaders, or
from the caller; the check itself is ``reloaders.verify.check_served``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ReloadVerifyFailed, UsageError
from ..keystore import FileKeystore
from .reloaders import Deployment
from .served import DEFAULT_TIMEOUT, Endpoint, ServedCheck, check_served, endpoints_from_options


@dataclass(frozen=True)
class VerifyReport:
    checks: tuple[ServedCheck, ...]
    # Certificates with no endpoint to check: nothing was proved about them.
    unchecked: tuple[str, ...]

    @property
    def failures(self) -> tuple[ServedCheck, ...]:
        return tuple(c for c in self.checks if not c.is_ok)

    def raise_for_failures(self) -> None:
        failures = self.failures
        if not failures:
            return
        first = failures[0]
        what = (
            f"{first.endpoint} serves serial {first.served_serial}, stored is {first.stored_serial}"
            if first.served_serial
            else f"{first.endpoint}: {first.error}"
        )
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise ReloadVerifyFailed(
            f"{first.name}: {what}{more}",
            "run the certificate's reloader (certman renew retries the deploy), "
            "and check the proxy's config points at live/<name>/",
        )


def deployment_from_keystore(keystore: FileKeystore, name: str) -> Deployment:
    entry = keystore.read_index().get(name)
    if entry is None or not keystore.has(name):
        raise UsageError(f"no certificate named {name!r} in {keystore.root}", "see `certman list` for the names")
    return Deployment(name, entry.identifiers, entry.serial or "", keystore.live(name))


def configured_endpoints(keystore: FileKeystore, name: str) -> tuple[Endpoint, ...]:
    """Every distinct ``verify`` endpoint of the certificate's reloaders, in order."""
    found: dict[Endpoint, None] = {}
    for table in keystore.read_spec(name).reloaders:
        found.update(dict.fromkeys(endpoints_from_options(table)))
    return tuple(found)


def verify_keystore(
    keystore: FileKeystore,
    names: Sequence[str] = (),
    *,
    endpoints: Sequence[Endpoint] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> VerifyReport:
    """Check ``names`` (default: every certificate) against ``endpoints`` or their configured ones."""
    names = list(names) or keystore.names()
    if not names:
        raise UsageError(f"no certificates in {keystore.root}", "issue one first: certman issue NAME")
    checks: list[ServedCheck] = []
    unchecked: list[str] = []
    for name in names:
        deployment = deployment_from_keystore(keystore, name)
        targets = tuple(endpoints) or configured_endpoints(keystore, name)
        if not targets:
            unchecked.append(name)
            continue
        checks.extend(check_served(deployment, targets, timeout=timeout))
    if not checks:
        raise UsageError(
            f"no endpoint to verify for {', '.join(unchecked)}",
            'pass --endpoint HOST:PORT, or add verify = ["HOST:PORT"] to the certificate\'s reloader',
        )
    return VerifyReport(tuple(checks), tuple(unchecked))
