"""RFC 9773 renewal information: the CA's suggested renewal window for one certificate."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
import requests

from ..errors import ACMEError
from .retry_after import parse_retry_after


class RenewalInfo(msgspec.Struct, frozen=True):
    """The suggested window (UTC), the CA's explanation URL, and Retry-After in seconds."""

    window_start: datetime.datetime
    window_end: datetime.datetime
    explanation_url: str | None
    retry_after: float | None

    @classmethod
    def of(cls, response: requests.Response) -> RenewalInfo:
        """Read a renewalInfo answer (§4.2). Unknown members are ignored; a missing or
        malformed window is a ValueError, a window that ends before it starts an ``ACMEError``."""
        body = response.json()
        try:
            window = body["suggestedWindow"]
            start = _rfc3339(window["start"])
            end = _rfc3339(window["end"])
        except (KeyError, TypeError) as exc:
            raise ValueError("no suggestedWindow") from exc
        if end < start:
            raise ACMEError("fetching renewal information: the CA sent a window that ends before it starts")
        explanation = body.get("explanationURL")
        return cls(start, end, explanation if isinstance(explanation, str) else None, parse_retry_after(response))


def _rfc3339(value: Any) -> datetime.datetime:
    if not isinstance(value, str):
        raise ValueError(value)
    moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(value)
    return moment.astimezone(datetime.UTC)
