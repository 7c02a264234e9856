"""Continuing an order a previous run left unfinished, instead of starting a new one.

Once every authorization is valid the order is worth keeping: if the CA is still
``processing`` it at the deadline, or the certificate download fails, the next run
picks the order up where it stopped (no new order, no new validation, no rate-limit
cost). The CA's view of the order decides what happens next:

    processing / valid -> wait and download
    ready              -> finalize with a CSR from the kept key
    anything else, 404 -> forget it and start a new order
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from acme import messages

from ..ca.session import AcmeSession, OrderResult
from ..config import CertSpec
from ..errors import ACMEError, CAUnreachable
from ..keys import load_key, make_csr
from ..keystore import FileKeystore, PendingOrder

log = logging.getLogger(__name__)


def remember(keystore: FileKeystore, spec: CertSpec, order_url: str, key_pem: bytes, now: datetime.datetime) -> None:
    """Keep ``order_url`` and its key so that a failed finalization can be continued."""
    keystore.write_pending_order(
        spec.name,
        PendingOrder(
            order_url=order_url,
            server=spec.directory_url,
            identifiers=tuple(i.value for i in spec.identifiers),
            created_at=now,
            key_pem=key_pem,
        ),
    )


def continue_pending(session: AcmeSession, spec: CertSpec, keystore: FileKeystore) -> tuple[OrderResult, bytes] | None:
    """Finish the kept order of ``spec`` and return (result, key PEM); None if there is none to finish."""
    pending = keystore.read_pending_order(spec.name)
    if pending is None:
        return None
    if pending.server != spec.directory_url or pending.identifiers != tuple(i.value for i in spec.identifiers):
        log.info("%s: the kept order is for another CA or other names; starting a new one", spec.name)
        keystore.clear_pending_order(spec.name)
        return None
    try:
        body = session.fetch_order(pending.order_url)
    except CAUnreachable:
        raise
    except ACMEError as exc:
        log.info("%s: the kept order %s is gone (%s); starting a new one", spec.name, pending.order_url, exc)
        keystore.clear_pending_order(spec.name)
        return None
    log.info("%s: continuing order %s (%s)", spec.name, pending.order_url, body.status)
    if body.status in (messages.STATUS_PROCESSING, messages.STATUS_VALID):
        return finish(keystore, spec, lambda: session.complete_order(pending.order_url)), pending.key_pem
    if body.status == messages.STATUS_READY:
        csr = make_csr(load_key(pending.key_pem), spec.identifiers)
        order = messages.OrderResource(body=body, uri=pending.order_url, csr_pem=csr)
        return finish(keystore, spec, lambda: session.finalize(order)), pending.key_pem
    keystore.clear_pending_order(spec.name)
    return None


def finish(keystore: FileKeystore, spec: CertSpec, complete: Callable[[], OrderResult]) -> OrderResult:
    """Run ``complete``; keep the order for the next run only if the CA was slow or unreachable."""
    try:
        return complete()
    except CAUnreachable:
        log.info("%s: the order is kept; the next run continues it", spec.name)
        raise
    except Exception:
        keystore.clear_pending_order(spec.name)
        raise
