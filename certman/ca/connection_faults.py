"""What a failed connection to the CA tells: whether the request may have arrived, and why.

``requests`` wraps urllib3's errors; these read them for the transport's retry policy.
"""

from __future__ import annotations

import requests
import urllib3


def may_have_arrived(exc: Exception) -> bool:
    """Whether the request may have reached the CA: not when the connection was never made."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    cause = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", cause)
    return not isinstance(reason, urllib3.exceptions.NewConnectionError)


def reason_of(exc: Exception) -> str:
    """A short reason for a failed connection, for messages (never the full exception text)."""
    text = str(exc)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "No route to host",
        "Temporary failure in name resolution",
    ):
        if marker in text:
            return marker.lower()
    return type(exc).__name__
