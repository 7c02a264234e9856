"""How an issuance's outcome changes a certificate's ``RenewalState``.

A new version stored means the certificate is fine again, whichever command stored
it: its failures, backoff and Retry-After go, so the next `certman renew` neither
waits nor reports the old error. The ARI window belonged to the previous
certificate, and the new one is still to be deployed.
"""

from __future__ import annotations

import datetime

from msgspec import structs

from .state_records import DeployState, RenewalState


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
