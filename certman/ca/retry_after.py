"""The Retry-After header (RFC 9110 §10.2.3), as ACME CAs send it with 429, 503 and polls."""

from __future__ import annotations

import datetime
from email.utils import parsedate_to_datetime

import requests


def parse_retry_after(response: requests.Response | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), if any."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(int(value)))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())
