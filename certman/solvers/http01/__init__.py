"""What both HTTP-01 solvers share: the token check, the well-known path, the fleet's token board."""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from ...errors import ACMEError
from .. import ChallengeBatch

WELL_KNOWN = "/.well-known/acme-challenge/"

# 22 base64url characters are RFC 8555 §8.3's 128-bit floor. Anything else is refused
# before it can become part of a path (the lego, getssl and acme-tiny traversal bugs).
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,255}$")


def check_token(token: str) -> str:
    # fullmatch: with match, "$" would accept a trailing newline.
    if not _TOKEN.fullmatch(token):
        raise ACMEError(
            f"the CA sent a challenge token that is not plain base64url: {token[:40]!r}",
            "refusing to use it; this CA is misbehaving",
        )
    return token


@runtime_checkable
class TokenBoard(Protocol):
    """Where a fleet publishes HTTP-01 answers for every host's challenge server (``certman.fleet.challenges``).

    ``publish`` MUST make every token of the batch answerable by every host before it
    returns; ``withdraw`` removes exactly the batch's tokens that this host published.
    """

    def publish(self, batch: ChallengeBatch) -> None: ...

    def withdraw(self, batch: ChallengeBatch) -> None: ...


@runtime_checkable
class PublishesTokens(Protocol):
    """A solver that, given a fleet's board, publishes its answers there instead of serving them."""

    def publish_through(self, board: TokenBoard) -> None: ...
