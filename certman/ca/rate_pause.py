"""A rate limit pauses every job of a run at that CA, not only the job that hit it.

A CA that answers 429 (or a ``rateLimited`` problem, RFC 8555 §6.7) with a Retry-After
(RFC 9110 §10.2.3) has said when it wants to hear from this client again. With one
session per CA shared by a run's jobs (``run_sessions``), the other jobs would otherwise
keep sending and each collect its own 429. ``PausingAdapter`` is the ``requests``
connection pool of such a session: after a rate-limited answer it holds back every
request to that CA until the Retry-After has passed. A job whose certificate deadline
(``certman.ca.deadline``) ends before then does not wait: it gets the same rate-limited
answer at once, without a request, and its state records when to come back, as the job
that hit the limit does.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from .deadline import current_deadline
from .retry_after import parse_retry_after

RATE_LIMITED = "urn:ietf:params:acme:error:rateLimited"
# Less time than this left after the pause is no time for an answer (transport.LAST_REQUEST, twice).
MARGIN = 0.1


class PausingAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` (``pool_maxsize`` connections kept alive per host) that pauses
    every request after a rate-limited answer until its Retry-After (seconds); thread-safe.

    ``sleep`` and ``monotonic`` are time in seconds.
    """

    def __init__(
        self,
        *,
        pool_maxsize: int,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(pool_maxsize=pool_maxsize)
        self._sleep = sleep
        self._monotonic = monotonic
        self._until = -math.inf
        self._lock = threading.Lock()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        paused = self.paused_for()
        if paused > 0:
            deadline = current_deadline()
            left = math.inf if deadline is None else deadline.remaining()
            if paused + MARGIN > left:
                return _rate_limited(request, paused)
            self._sleep(paused)
            if deadline is not None and isinstance(timeout, int | float):
                timeout = max(min(timeout, deadline.remaining()), MARGIN / 2)
        response = super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        if _rate_limited_answer(response):
            wait = parse_retry_after(response)
            if wait:
                with self._lock:
                    self._until = max(self._until, self._monotonic() + wait)
        return response

    def paused_for(self) -> float:
        """Seconds until requests to this CA may go again; zero or less when they may now."""
        with self._lock:
            return self._until - self._monotonic()


def _rate_limited_answer(response: requests.Response) -> bool:
    if response.status_code == 429:
        return True
    if response.ok or "problem+json" not in response.headers.get("Content-Type", ""):
        return False
    try:
        document: Any = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("type") == RATE_LIMITED


def _rate_limited(request: requests.PreparedRequest, paused: float) -> requests.Response:
    """The CA's rate-limited answer, repeated for a job that cannot wait it out."""
    response = requests.Response()
    response.status_code = 429
    response.request = request
    response.url = request.url or ""
    response.headers = CaseInsensitiveDict(
        {"Content-Type": "application/problem+json", "Retry-After": str(math.ceil(paused))}
    )
    detail = f"held back: the CA rate-limited another request of this run and asked for {math.ceil(paused)} s of quiet"
    response._content = json.dumps({"type": RATE_LIMITED, "detail": detail, "status": 429}).encode()
    response.encoding = "utf-8"
    return response
