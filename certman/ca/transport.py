"""The wire under an ACME session: signed requests, nonces, retries and the run's deadline.

certman sends its own requests over ``requests`` and signs them with ``acme.jws``
(``signing``), and parses problem documents (RFC 8555 §6.7) with ``acme.messages``. The
``acme`` library's ``ClientNetwork`` is not used: its policy costs seconds per issuance and
fails ~40% of issuances against a CA that rejects 30% of nonces (it retries a badNonce only
once, and drops the fresh nonce that the error carried), and importing it loads pyOpenSSL.

For every request:
- https only, and no redirects (a redirect could downgrade us to http);
- each socket wait is bounded by the request timeout and by what is left of the deadline:
  the transport's own (``timeout``), or the certificate's when that is earlier
  (``certman.ca.deadline``); once it has passed, nothing more is sent;
- a badNonce (§6.5) is retried up to ``BAD_NONCE_RETRIES`` times, with the nonce of the
  error response, so that no nonce is spent twice and no round trip is wasted;
- connection errors, timeouts, truncated bodies and 5xx are retried up to
  ``TRANSIENT_RETRIES`` times, after the CA's Retry-After or else an exponential backoff
  with full jitter, and never past the deadline (then ``CAUnreachable``); a 501 is the
  CA's lasting answer (a feature it lacks), not a fault to retry;
- except a POST that is not ``replay_safe`` (finalize, challenge answer, revocation, key
  change, account update and deactivation): once it may have reached the CA (5xx, timeout
  after connecting, truncated body) it raises ``AnswerLost`` and the session re-reads the
  resource (``certman.ca.replays``); only a request that never left is sent again;
- a 429 is a rateLimited problem with its Retry-After, whatever the method.

Time comes in through the constructor (``sleep``, ``monotonic``, ``jitter``), and so does
the ``requests.Session`` underneath, so the policy can be tested without a CA.
"""

from __future__ import annotations

import datetime
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from acme import errors as acme_errors
from acme import messages
from josepy import errors as jose_errors
from josepy import interfaces, jwk

from .. import __version__, progress
from ..config import check_ca_bundle
from ..errors import ACMEError, AnswerLost, CAUnreachable, TLSVerifyFailed
from .connection_faults import may_have_arrived, reason_of
from .deadline import current_deadline
from .retry_after import parse_retry_after
from .signing import NoncePool, signed_body

log = logging.getLogger(__name__)

BAD_NONCE_RETRIES = 10
TRANSIENT_RETRIES = 4
REQUEST_TIMEOUT = 30.0
# Less time than this left before the deadline is no time for an answer: send nothing.
LAST_REQUEST = 0.05
USER_AGENT = f"certman/{__version__}"
JOSE_CONTENT_TYPE = "application/jose+json"

Sleep = Callable[[float], None]
Monotonic = Callable[[], float]
# (low, high) -> a delay in seconds between them: the backoff's jitter.
Jitter = Callable[[float, float], float]


class Transport(Protocol):
    """The wire an ``AcmeSession`` talks through; ``AcmeTransport`` is the real one.

    An implementation MUST sign every ``post`` as RFC 8555 §6.2 says: with the key of the
    last ``use_key``, the ``kid`` of the last ``use_account`` (the ``jwk`` when that is
    None), and a nonce never used before, fetched from the ``use_nonce_url`` URL (§7.2)
    when no response has left one. It MUST raise ``acme.messages.Error`` for a problem
    document, with a ``retry_after`` attribute (seconds or None), and a ``CertmanError``
    when the CA cannot be reached or must not be followed. It SHOULD retry what is
    transient, never past its deadline.
    """

    def get(self, url: str) -> requests.Response:
        """An unauthenticated GET of a JSON resource (the directory, renewalInfo)."""
        ...

    def post(
        self, url: str, body: interfaces.JSONDeSerializable | None, *, replay_safe: bool = True
    ) -> requests.Response:
        """A signed POST of ``body``; None is a POST-as-GET (§6.3).

        With ``replay_safe`` false, the request MUST NOT be sent again once the CA may
        have received it; ``AnswerLost`` says that its answer was lost.
        """
        ...

    def use_key(self, key: jwk.JWK) -> None:
        """Sign with ``key`` from now on (ES256 for EC keys, else RS256)."""
        ...

    def use_account(self, uri: str | None) -> None:
        """Name the account by ``kid`` from now on; None signs with the ``jwk`` instead."""
        ...

    def use_nonce_url(self, url: str) -> None:
        """Where to fetch a nonce when none is left (the directory's newNonce)."""
        ...

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` and return True, or return False at once if that would pass the deadline."""
        ...


class AcmeTransport:
    """``Transport`` over ``requests`` with certman's policy.

    ``timeout`` is the whole conversation's deadline and ``request_timeout`` each socket
    wait's, in seconds. The seams: ``http`` is the ``requests.Session`` underneath (mount an
    adapter on it to script a CA), ``sleep`` and ``monotonic`` are time in seconds, and
    ``jitter(low, high)`` draws each backoff delay. Raises ``TLSVerifyFailed``,
    ``CAUnreachable`` (with the CA's Retry-After when it sent one), ``ACMEError`` for http://
    URLs and redirects, and ``acme.messages.Error`` for problem documents.
    """

    def __init__(
        self,
        directory_url: str,
        *,
        ca_bundle: str | None = None,
        timeout: float = 90.0,
        request_timeout: float = REQUEST_TIMEOUT,
        http: requests.Session | None = None,
        sleep: Sleep = time.sleep,
        monotonic: Monotonic = time.monotonic,
        jitter: Jitter = random.uniform,
    ) -> None:
        self.sleep = sleep
        self.monotonic = monotonic
        self.jitter = jitter
        self._own_deadline = monotonic() + timeout
        self._net = _Network(self, ca_bundle=ca_bundle, request_timeout=request_timeout)
        if http is not None:
            self._net.session = http
        self._net.read_environment_once(directory_url)
        self._nonce_url: str | None = None

    def get(self, url: str) -> requests.Response:
        with progress.waiting(f"the CA at {urlsplit(url).netloc}"):
            return self._net.get(url)

    def post(
        self, url: str, body: interfaces.JSONDeSerializable | None, *, replay_safe: bool = True
    ) -> requests.Response:
        with progress.waiting(f"the CA at {urlsplit(url).netloc}"):
            return self._net.post(url, body, self._nonce_url, replay_safe=replay_safe)

    def use_key(self, key: jwk.JWK) -> None:
        self._net.key = key

    def use_account(self, uri: str | None) -> None:
        self._net.kid = uri

    def use_nonce_url(self, url: str) -> None:
        self._nonce_url = url

    def remaining(self) -> float:
        """Seconds left before this conversation's deadline: its own, or the certificate's if earlier."""
        left = self._own_deadline - self.monotonic()
        certificate = current_deadline()
        return left if certificate is None else min(left, certificate.remaining())

    def wait(self, seconds: float) -> bool:
        if seconds + 2 * LAST_REQUEST > self.remaining():
            return False
        self.sleep(seconds)
        return True

    def _backoff(self, fault: _Transient, attempt: int) -> None:
        """Wait before retry number ``attempt`` of a transient fault, or raise ``CAUnreachable``."""
        # Exponential backoff with full jitter, unless the CA said how long to wait.
        wait = fault.retry_after if fault.retry_after is not None else self.jitter(0, 0.25 * 2**attempt)
        # The fault is the error when a retry would find no time left (LAST_REQUEST).
        if attempt > TRANSIENT_RETRIES or wait + 2 * LAST_REQUEST > self.remaining():
            come_back = (
                datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=fault.retry_after)
                if fault.retry_after
                else None
            )
            raise CAUnreachable(
                fault.what, "check the --server URL and that the CA is up; the next run retries", retry_after=come_back
            ) from fault
        log.debug("%s; retrying in %.2fs", fault.what, wait)
        self.sleep(wait)


class _Transient(Exception):
    """A fault worth retrying: connection error, timeout, truncated body or 5xx.

    ``reached``: whether the request may have reached the CA (all but a connection
    that was never made).
    """

    def __init__(self, what: str, retry_after: float | None, *, reached: bool = True) -> None:
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after
        self.reached = reached


class _Network:
    """Signed and unsigned requests with the policy of the module docstring, timed by its owner."""

    def __init__(self, owner: AcmeTransport, *, ca_bundle: str | None, request_timeout: float) -> None:
        self.owner = owner
        self.request_timeout = request_timeout
        # requests takes a CA bundle path, or True for its default trust.
        self.verify: str | bool = ca_bundle or True
        self.session = requests.Session()
        self.key: jwk.JWK | None = None
        self.kid: str | None = None
        self.nonces = NoncePool()

    def read_environment_once(self, url: str) -> None:
        """Resolve proxy and CA-bundle environment variables for ``url`` now, not per request.

        requests re-reads them on every request, which costs about 1 ms with a large
        environment: a third of certman's CPU per certificate. A session talks to one CA.
        """
        proxies = requests.utils.get_environ_proxies(url)
        if self.verify is True:
            self.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.trust_env = False
        self.session.proxies = dict(proxies)

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One HTTP exchange; ``_Transient`` for what is worth retrying."""
        if not url.startswith("https://"):
            raise ACMEError(
                f"refusing non-https URL from the CA: {url}", "an ACME server must use https for every resource"
            )
        # No redirects: a redirect could downgrade us to plain http.
        kwargs["allow_redirects"] = False
        # Each socket wait is bounded by the request timeout and by what is left of the
        # deadline, so a CA that stalls near the end cannot carry the run past it.
        left = self.owner.remaining()
        if left < LAST_REQUEST:
            certificate = current_deadline()
            budget = f" (--timeout {certificate.seconds:g} s for this certificate)" if certificate else ""
            raise CAUnreachable(
                f"gave up on the ACME server at {_short(url)}: the deadline passed{budget}",
                "the CA did not answer in time; the next run retries, or raise --timeout",
            )
        kwargs["timeout"] = min(self.request_timeout, left)
        kwargs.setdefault("headers", {})["User-Agent"] = USER_AGENT
        log.debug("%s %s", method, url)
        try:
            response = self.session.request(method, url, verify=self.verify, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise TLSVerifyFailed(
                f"TLS verification of the ACME server failed ({_short(url)})",
                "pass --ca-bundle with the CA that signed the server's certificate",
            ) from exc
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            # A truncated body (ChunkedEncodingError) is a connection that broke mid-answer.
            raise _Transient(
                f"cannot reach the ACME server at {_short(url)}: {reason_of(exc)}", None, reached=may_have_arrived(exc)
            ) from exc
        except OSError as exc:
            if isinstance(exc, requests.exceptions.RequestException):
                raise
            # requests raises a bare OSError when the CA bundle it was given cannot be
            # loaded (e.g. a spec.toml naming a bundle that was since removed).
            if isinstance(self.verify, str):
                check_ca_bundle(self.verify, "CA bundle")
            raise CAUnreachable(
                f"cannot talk to the ACME server at {_short(url)}: {exc}", "check --ca-bundle and the network settings"
            ) from exc
        # ACME bodies are UTF-8 (RFC 8555 §5); don't let requests guess from the content.
        response.encoding = "utf-8"
        log.debug("HTTP %d from %s", response.status_code, url)
        # 501 Not Implemented is the CA's lasting answer, not a fault to retry.
        if response.status_code >= 500 and response.status_code != 501:
            raise _Transient(
                f"the ACME server answered {response.status_code} for {_short(url)}", parse_retry_after(response)
            )
        if 300 <= response.status_code < 400:
            raise ACMEError(
                f"the ACME server redirected {_short(url)}; certman does not follow redirects",
                "use the final directory URL as --server",
            )
        return response

    def post_once(
        self, url: str, body: interfaces.JSONDeSerializable | None, nonce_url: str | None
    ) -> requests.Response:
        if self.key is None:
            raise ACMEError("no account key to sign with", "this is a bug in certman; please report it")
        nonce = self.nonces.take() or self.fresh_nonce(url, nonce_url)
        data = signed_body(body, key=self.key, nonce=nonce, url=url, kid=self.kid)
        response = self.send("POST", url, data=data, headers={"Content-Type": JOSE_CONTENT_TYPE})
        # Keep the nonce of every response, errors included (RFC 8555 §6.5), so that a
        # badNonce retry or the next request needs no extra round trip.
        self.nonces.keep(response)
        return check_response(response, expect_json=False)

    def fresh_nonce(self, url: str, nonce_url: str | None) -> bytes:
        """A nonce from newNonce (§7.2), or from a HEAD of ``url`` before the directory is known."""
        response = self.head(nonce_url or url)
        if nonce_url is not None:
            check_response(response, expect_json=False)
        if not self.nonces.keep(response):
            raise acme_errors.MissingNonce(response)
        nonce = self.nonces.take()
        assert nonce is not None
        return nonce

    def post(
        self, url: str, body: interfaces.JSONDeSerializable | None, nonce_url: str | None, *, replay_safe: bool
    ) -> requests.Response:
        bad_nonces = 0
        attempt = 0
        while True:
            try:
                return self.post_once(url, body, nonce_url)
            except messages.Error as error:
                if error.code == "badNonce" and bad_nonces < BAD_NONCE_RETRIES:
                    bad_nonces += 1
                    log.debug("badNonce, retrying (%d)", bad_nonces)
                    continue
                raise
            except _Transient as fault:
                if fault.reached and not replay_safe:
                    raise AnswerLost(
                        f"{fault.what}; the CA may have acted on the request",
                        "the next run reads the CA's state and continues from it",
                    ) from fault
                attempt += 1
                self.owner._backoff(fault, attempt)

    def get(self, url: str) -> requests.Response:
        attempt = 0
        while True:
            try:
                return check_response(self.send("GET", url), expect_json=True)
            except _Transient as fault:
                attempt += 1
                self.owner._backoff(fault, attempt)

    def head(self, url: str) -> requests.Response:
        attempt = 0
        while True:
            try:
                return self.send("HEAD", url)
            except _Transient as fault:
                attempt += 1
                self.owner._backoff(fault, attempt)


def check_response(response: requests.Response, *, expect_json: bool) -> requests.Response:
    """``response`` when it succeeded, else its problem document (RFC 8555 §6.7) as ``messages.Error``.

    Every problem carries the response's Retry-After as ``retry_after`` (seconds or None),
    whatever the method: a 429 can answer the HEAD for a nonce as well as a POST. A 429
    without a problem document is still ``rateLimited``. An error that is not a problem
    document, or a non-JSON answer where JSON was expected, is ``acme.errors.ClientError``.
    """
    try:
        document = response.json()
    except ValueError:
        document = None
    if response.ok:
        if expect_json and document is None:
            raise acme_errors.ClientError(f"Unexpected response Content-Type: {response.headers.get('Content-Type')}")
        return response
    if document is None:
        if response.status_code == 409:
            raise acme_errors.ConflictError(response.headers.get("Location", "UNKNOWN-LOCATION"))
        if response.status_code == 429:
            problem = messages.Error.with_code("rateLimited", detail="the CA answered 429 Too Many Requests")
        elif response.status_code == 501:
            problem = messages.Error.with_code("serverInternal", detail="not implemented")
        else:
            raise acme_errors.ClientError(response)
    else:
        try:
            problem = messages.Error.from_json(document)
        except jose_errors.DeserializationError as error:
            raise acme_errors.ClientError((response, error)) from error
    problem.retry_after = parse_retry_after(response)
    # The status tells a feature the CA lacks (501) whatever the problem type says.
    problem.http_status = response.status_code
    raise problem


def _short(url: str) -> str:
    return url if len(url) < 80 else url[:77] + "..."
