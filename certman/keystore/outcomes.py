"""How an issuance's outcome changes a certificate's ``RenewalState``.

A new version stored means the certificate is fine again, whichever command stored
it: its failures, backoff and Retry-After go, so the next `certman renew` neither
waits nor reports the old error. The ARI window belonged to the previous
certificate, and the new one is still to be deployed.

A ``live/<name>`` put back (``FileKeystore.repair_live``) points the proxy at files it
has not loaded since, so the certificate is to be deployed again as well.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING

from msgspec import structs

from ..errors import CertmanError
from .state_records import DeployState, RenewalState

if TYPE_CHECKING:
    from .contract import Keystore
    from .live_links import LiveRepair


def after_success(state: RenewalState, now: datetime.datetime, *, serial: str, reloaders: bool) -> RenewalState:
    """``state`` once the certificate with ``serial`` was issued and stored at ``now`` (UTC).

    ``reloaders``: whether the certificate has reloaders, and so a deploy is pending.
    """
    return structs.replace(
        state,
        last_attempt=now,
        last_success=now,
        consecutive_failures=0,
        last_error=None,
        next_attempt=None,
        retry_after=None,
        ari=None,
        deploy=DeployState(pending=reloaders, serial=serial),
    )


def redeploy_repaired(keystore: Keystore, repairs: Iterable[LiveRepair]) -> list[str]:
    """Mark each repaired certificate that has reloaders for deploy, so the next deploy step
    (this renew run's, or the next one's) reloads its proxy onto the restored files.

    Takes ``lock_cert(name)`` per certificate; the caller must not hold it. Returns the
    names marked. A spec that cannot be read is marked too: the deploy step reports it.
    """
    marked: list[str] = []
    repairs = list(repairs)
    if not repairs:
        return marked
    index = keystore.read_index()
    for repair in repairs:
        entry = index.get(repair.name)
        if entry is None:
            continue
        try:
            has_reloaders = bool(keystore.read_spec(repair.name).reloaders)
        except CertmanError:
            has_reloaders = True
        if not has_reloaders:
            continue
        with keystore.lock_cert(repair.name):
            state = keystore.read_state(repair.name)
            again = DeployState(
                True, entry.serial, f"live/{repair.name} was put back; its proxy has not reloaded since"
            )
            keystore.write_state(repair.name, structs.replace(state, deploy=again))
        marked.append(repair.name)
    return marked
