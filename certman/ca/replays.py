"""State-changing requests whose answer was lost: learn what the CA did, never act twice.

A finalize, a challenge answer, a revocation, a key change, an account update or
deactivation may have been processed by the CA even when its answer is a 5xx, a timeout
or a truncated body. Sent again blindly, the CA refuses the second one (Pebble answers
finalize with 403 orderNotReady), and the run fails with a misleading error after an
action that in fact succeeded. So the transport raises ``AnswerLost`` for such a request
(``replay_safe=False``), and the caller re-reads the resource (POST-as-GET, RFC 8555
§6.3) and continues from its real state; it sends the request again only when that
state shows the CA did not act.

Audited, and safe to send again as they are: newNonce, the directory and renewalInfo
(GETs), every POST-as-GET, newAccount (the CA answers 200 with the existing account for
a known key, §7.3.1), and newOrder (a second order for the same names is merely pending;
the first is abandoned, as any unfinished order is).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import requests
from acme import messages
from josepy import interfaces, jwk

from ..errors import ACMEError, AnswerLost, CAUnreachable
from .transport import TRANSIENT_RETRIES, Transport

if TYPE_CHECKING:
    from .session import AcmeSession

log = logging.getLogger(__name__)

# The pause before sending again a request the CA did not act on, doubled each time.
FIRST_PAUSE = 0.05


def post_changing(
    transport: Transport,
    url: str,
    body: interfaces.JSONDeSerializable | None,
    settled: Callable[[], bool],
) -> requests.Response | None:
    """POST a state-changing ``body`` to ``url``; its response, or None when its answer
    was lost and ``settled()`` (which re-reads the resource) shows the CA acted on it.

    When ``settled()`` shows it did not, the request is sent again, up to
    ``TRANSIENT_RETRIES`` times and never past the transport's deadline; then the last
    ``AnswerLost`` (exit 4) is raised. ``settled`` raises what the re-read raises.
    """
    attempt = 0
    while True:
        try:
            return transport.post(url, body, replay_safe=False)
        except AnswerLost as lost:
            log.info("%s; reading the CA's state before anything else", lost.message)
            if settled():
                log.info("the CA had processed %s; continuing from its state", url)
                return None
            attempt += 1
            if attempt > TRANSIENT_RETRIES or not transport.wait(FIRST_PAUSE * 2**attempt):
                raise


def with_contact(session: AcmeSession, contact: tuple[str, ...]) -> messages.RegistrationResource | None:
    """The account read back, if its contacts are already ``contact`` (a lost update took)."""
    now = session.query_account()
    return now if tuple(now.body.contact) == contact else None


def deactivated(session: AcmeSession) -> messages.RegistrationResource | None:
    """The account read back, if it is deactivated (a lost deactivation took)."""
    try:
        now = session.query_account()
    except ACMEError as exc:
        # A CA refuses to read a deactivated account back (unauthorized, RFC 8555 §7.3.6).
        if (exc.problem_type or "").rsplit(":", 1)[-1] != "unauthorized":
            raise
        return messages.RegistrationResource(
            body=messages.Registration.from_json({"status": "deactivated"}), uri=session.account_uri
        )
    return now if now.body.status == "deactivated" else None


def accepts_key(session: AcmeSession, key: jwk.JWK) -> bool:
    """Whether the CA reads the account back when signed by ``key`` (a lost keyChange took)."""
    session.transport.use_key(key)
    try:
        session.query_account()
    except CAUnreachable:
        raise
    except ACMEError:
        return False
    finally:
        session.transport.use_key(session.account_key)
    return True
