"""What both HTTP-01 solvers share: the token check and the well-known path."""

from __future__ import annotations

import re

from ...errors import ACMEError

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
