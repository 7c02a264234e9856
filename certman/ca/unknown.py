"""What a CA may send that certman does not know yet: challenge types, fields and statuses.

CAs add to RFC 8555 without asking clients first: Let's Encrypt staging offers
``dns-persist-01`` and Boulder ``dns-account-01``, and a client that refused every
authorization carrying one broke on the day they appeared. certman ignores what it does
not use and reports what it cannot act on, and never fails on it:

- an unknown challenge type is never answered, and its token is never checked (only the
  types certman solves are); when no offered type has a solver, the error lists them all;
- unknown members of an order, authorization or challenge are ignored (josepy keeps only
  the fields it declares);
- an unknown status of an order, authorization or challenge is logged as a warning and
  read as ``processing``: not final, so certman polls on until the CA settles it, within
  the run's deadline.
"""

from __future__ import annotations

import logging
from typing import Any

from acme import messages

log = logging.getLogger(__name__)

# The challenge types certman's solvers answer; only their tokens are ever used.
SOLVED_TYPES = frozenset({"http-01", "dns-01", "tls-alpn-01"})
# How an unknown status reads: a state the CA has not finished with.
UNKNOWN_STATUS_READS_AS = "processing"


def known_statuses(raw: Any, what: str) -> Any:
    """A copy of the order, authorization or challenge JSON ``raw`` (what the CA sent, for
    ``what`` in log lines) whose unknown statuses read as ``processing``."""
    if not isinstance(raw, dict):
        return raw
    document = dict(raw)
    _settle(document, what)
    if isinstance(document.get("challenges"), list):
        document["challenges"] = [dict(c) if isinstance(c, dict) else c for c in document["challenges"]]
        for challenge in document["challenges"]:
            if isinstance(challenge, dict):
                _settle(challenge, f"{challenge_type_of(challenge)} challenge")
    return document


def _settle(document: dict[str, Any], what: str) -> None:
    status = document.get("status")
    if isinstance(status, str) and status not in messages.Status.POSSIBLE_NAMES:
        log.warning(
            "the CA reports %s status %r, which certman does not know; waiting as for %r",
            what,
            status,
            UNKNOWN_STATUS_READS_AS,
        )
        document["status"] = UNKNOWN_STATUS_READS_AS


def challenge_type_of(challenge: Any) -> str:
    """The ``type`` of a challenge as the CA sent it (raw JSON or the acme library's
    ``ChallengeBody``, whose unrecognized challenges have no ``typ``)."""
    if isinstance(challenge, messages.ChallengeBody):
        typ = challenge.chall.typ
        if isinstance(typ, str):
            return typ
        challenge = getattr(challenge.chall, "jobj", {})
    typ = challenge.get("type") if isinstance(challenge, dict) else None
    return typ if isinstance(typ, str) else "?"


def check_raw_tokens(authz: Any) -> None:
    """Check the token of every challenge certman may answer, as the CA sent it.

    The library decodes tokens leniently (base64 skips characters such as '.') and
    re-encodes them, which would hide a hostile token; the check must see the original.
    A challenge type certman does not solve is never answered, so its token is not used.
    """
    from ..solvers.http01 import check_token

    challenges = authz.get("challenges", []) if isinstance(authz, dict) else []
    for challenge in challenges:
        if isinstance(challenge, dict) and "token" in challenge and challenge_type_of(challenge) in SOLVED_TYPES:
            check_token(str(challenge["token"]))
