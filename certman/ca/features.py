"""Optional CA features: what a CA's directory may leave out (RFC 8555 §7.1.1).

keyChange (§7.3.5) and renewalInfo (RFC 9773) are optional in practice: Caddy's ACME
server lists keyChange and answers it 501, and publishes no terms of service. A missing
feature is ``Unsupported`` (exit 4, never retried); how an answer says so is decided in
``certman.ca.problems.problem_error``.
"""

from __future__ import annotations

from acme import messages

from ..errors import Unsupported

NOT_RETRIED = "the CA does not implement it, so certman does not retry; use a CA that does if you need it"


def feature_url(directory: messages.Directory, resource: str, feature: str) -> str:
    """The directory's URL for an optional ``resource``; ``Unsupported`` naming ``feature``
    when the directory does not list it."""
    try:
        url: str = directory[resource]
    except KeyError:
        raise Unsupported(
            f"this CA does not support {feature} (its directory has no {resource})", NOT_RETRIED
        ) from None
    return url
