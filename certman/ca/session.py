"""One conversation with an ACME CA, over ``acme.client.ClientV2``.

The library does the JWS signing and message (de)serialisation. Everything about
time is ours: the library's helpers sleep a fixed second between polls and retry a
badNonce only once (losing the fresh nonce carried by the error), which costs seconds
per issuance and fails ~40% of issuances against a CA that rejects 30% of nonces.

Every request here has a timeout, a bounded retry for transient faults (badNonce,
connection errors, 5xx) that honours ``Retry-After``, and an overall deadline, so a
stuck CA is an error and never a hang. Library and transport exceptions are turned
into ``certman.errors`` at this boundary.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from josepy import errors as jose_errors
from josepy import interfaces, json_util, jwa, jwk

from .. import __version__
from ..config import check_ca_bundle
from ..errors import ACMEError, AuthorizationFailed, CAUnreachable, CertmanError, RateLimited, TLSVerifyFailed
from ..names import Identifier

log = logging.getLogger(__name__)

T = TypeVar("T")

BAD_NONCE_RETRIES = 10
TRANSIENT_RETRIES = 4
REQUEST_TIMEOUT = 30.0
POLL_START = 0.01
POLL_FACTOR = 1.6
POLL_MAX = 2.0
USER_AGENT = f"certman/{__version__}"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


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
    return max(0.0, (when - _now()).total_seconds())


class _Transient(Exception):
    """A fault worth retrying: connection error, timeout or 5xx."""

    def __init__(self, what: str, retry_after: float | None) -> None:
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after


class Network(acme_client.ClientNetwork):
    """``ClientNetwork`` with certman's transport policy (see the module docstring)."""

    def __init__(
        self, key: jwk.JWK, *, alg: jwa.JWASignature, ca_bundle: str | None, timeout: float, deadline: float
    ) -> None:
        super().__init__(key, alg=alg, verify_ssl=True, user_agent=USER_AGENT, timeout=int(timeout))
        # requests takes a CA bundle path where the library expects a bool.
        self.verify_ssl = ca_bundle or True  # type: ignore[assignment]
        self._timeout = timeout
        self.deadline = deadline
        self.ca_bundle = ca_bundle

    def read_environment_once(self, url: str) -> None:
        """Resolve proxy and CA-bundle environment variables for ``url`` now, not per request.

        requests re-reads them on every request, which costs about 1 ms with a large
        environment: a third of certman's CPU per certificate. A session talks to one CA.
        """
        proxies = requests.utils.get_environ_proxies(url)
        if self.verify_ssl is True:
            self.verify_ssl = (
                os.environ.get("REQUESTS_CA_BUNDLE")  # type: ignore[assignment]
                or os.environ.get("CURL_CA_BUNDLE")
                or True
            )
        self.session.trust_env = False
        self.session.proxies = dict(proxies)

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if not url.startswith("https://"):
            raise ACMEError(
                f"refusing non-https URL from the CA: {url}", "an ACME server must use https for every resource"
            )
        # No redirects: a redirect could downgrade us to plain http.
        kwargs["allow_redirects"] = False
        # Each socket wait is bounded by the request timeout and by what is left of the
        # run's deadline, so a CA that stalls near the end cannot carry the run past it.
        kwargs["timeout"] = max(0.05, min(self._timeout, self.deadline - time.monotonic()))
        try:
            response = super()._send_request(method, url, *args, **kwargs)
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
            raise _Transient(f"cannot reach the ACME server at {_short(url)}: {_reason(exc)}", None) from exc
        except OSError as exc:
            if isinstance(exc, requests.exceptions.RequestException):
                raise
            # requests raises a bare OSError when the CA bundle it was given cannot be
            # loaded (e.g. a spec.toml naming a bundle that was since removed).
            if isinstance(self.verify_ssl, str):
                check_ca_bundle(self.verify_ssl, "CA bundle")
            raise CAUnreachable(
                f"cannot talk to the ACME server at {_short(url)}: {exc}", "check --ca-bundle and the network settings"
            ) from exc
        if response.status_code >= 500:
            raise _Transient(
                f"the ACME server answered {response.status_code} for {_short(url)}", parse_retry_after(response)
            )
        if 300 <= response.status_code < 400:
            raise ACMEError(
                f"the ACME server redirected {_short(url)}; certman does not follow redirects",
                "use the final directory URL as --server",
            )
        return response

    def _post_once(
        self,
        url: str,
        obj: interfaces.JSONDeSerializable,
        content_type: str = acme_client.ClientNetwork.JOSE_CONTENT_TYPE,
        **kwargs: Any,
    ) -> requests.Response:
        new_nonce_url = kwargs.pop("new_nonce_url", None)
        data = self._wrap_in_jws(obj, self._get_nonce(url, new_nonce_url), url)
        kwargs.setdefault("headers", {"Content-Type": content_type})
        response = self._send_request("POST", url, data=data, **kwargs)
        # Keep the nonce of every response, errors included (RFC 8555 §6.5): the
        # library drops it on errors and then needs an extra round trip.
        if self.REPLAY_NONCE_HEADER in response.headers:
            self._add_nonce(response)
        return self._check_response(response, content_type=content_type)

    @classmethod
    def _check_response(cls, response: requests.Response, content_type: str | None = None) -> requests.Response:
        # Every problem document carries the response's Retry-After, whatever the method
        # (a 429 can answer the HEAD for a nonce as well as a POST).
        if response.status_code == 409 and response.headers.get("Content-Type", "").startswith(
            cls.JSON_ERROR_CONTENT_TYPE
        ):
            # The library turns any 409 into a bare ConflictError and drops the problem
            # document; RFC 9773's alreadyReplaced is a 409 we must recognise.
            conflict = messages.Error.from_json(response.json())
            conflict.retry_after = parse_retry_after(response)
            raise conflict
        try:
            return super()._check_response(response, content_type=content_type)
        except messages.Error as error:
            error.retry_after = parse_retry_after(response)
            raise
        except acme_errors.ClientError as exc:
            if response.status_code != 429:
                raise
            # A 429 without a problem document (e.g. to a HEAD) is still a rate limit.
            limited = messages.Error.with_code("rateLimited", detail="the CA answered 429 Too Many Requests")
            limited.retry_after = parse_retry_after(response)
            raise limited from exc

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        bad_nonces = 0
        attempt = 0
        while True:
            try:
                return self._post_once(*args, **dict(kwargs))
            except messages.Error as error:
                if error.code == "badNonce" and bad_nonces < BAD_NONCE_RETRIES:
                    bad_nonces += 1
                    log.debug("badNonce, retrying (%d)", bad_nonces)
                    continue
                raise
            except _Transient as fault:
                attempt += 1
                self._wait_before_retry(fault, attempt)

    def get(
        self, url: str, content_type: str = acme_client.ClientNetwork.JSON_CONTENT_TYPE, **kwargs: Any
    ) -> requests.Response:
        attempt = 0
        while True:
            try:
                return super().get(url, content_type, **kwargs)
            except _Transient as fault:
                attempt += 1
                self._wait_before_retry(fault, attempt)

    def head(self, *args: Any, **kwargs: Any) -> requests.Response:
        attempt = 0
        while True:
            try:
                return super().head(*args, **kwargs)
            except _Transient as fault:
                attempt += 1
                self._wait_before_retry(fault, attempt)

    def _wait_before_retry(self, fault: _Transient, attempt: int) -> None:
        # Exponential backoff with full jitter, unless the CA said how long to wait.
        wait = fault.retry_after if fault.retry_after is not None else random.uniform(0, 0.25 * 2**attempt)
        if attempt > TRANSIENT_RETRIES or time.monotonic() + wait > self.deadline:
            come_back = _now() + datetime.timedelta(seconds=fault.retry_after) if fault.retry_after else None
            raise CAUnreachable(
                fault.what, "check the --server URL and that the CA is up; the next run retries", retry_after=come_back
            ) from fault
        log.debug("%s; retrying in %.2fs", fault.what, wait)
        time.sleep(wait)


def _short(url: str) -> str:
    return url if len(url) < 80 else url[:77] + "..."


def _reason(exc: Exception) -> str:
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


def problem_error(error: messages.Error, context: str) -> ACMEError:
    """An RFC 8555 problem document as an operator-facing error."""
    detail = error.detail or error.title or error.typ
    retry_after = getattr(error, "retry_after", None)
    if error.code == "rateLimited":
        when = _now() + datetime.timedelta(seconds=retry_after) if retry_after is not None else None
        return RateLimited(
            f"{context}: the CA rate-limited this request: {detail}",
            f"certman will not retry before {when:%Y-%m-%d %H:%M} UTC" if when else "wait before retrying",
            retry_after=when,
        )
    hints = {
        "badCSR": "this is a certman bug; please report it",
        "rejectedIdentifier": "the CA will not issue for this name; check the spelling",
        "unsupportedIdentifier": "the CA does not support this identifier type",
        "externalAccountRequired": "this CA needs external account binding (--eab-kid)",
        "accountDoesNotExist": "the stored account is gone at the CA; remove it to register again",
        "userActionRequired": "the CA needs you to act: see its website",
        "unauthorized": "the account is not allowed to do this",
        "malformed": None,
    }
    return ACMEError(f"{context}: {detail}", hints.get(error.code or ""), problem_type=error.typ)


@dataclass(frozen=True)
class RenewalInfo:
    """RFC 9773 renewal information: the CA's suggested window for one certificate."""

    window_start: datetime.datetime
    window_end: datetime.datetime
    explanation_url: str | None
    retry_after: float | None


@dataclass(frozen=True)
class OrderResult:
    fullchain_pem: str
    alternative_fullchains_pem: tuple[str, ...]
    order_url: str


class AcmeSession:
    """Account, order, authorizations, finalize and download against one ACME directory."""

    def __init__(
        self,
        directory_url: str,
        account_key: jwk.JWK,
        *,
        ca_bundle: str | None = None,
        timeout: float = 90.0,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.deadline = time.monotonic() + timeout
        self.directory_url = directory_url
        self.account_key = account_key
        alg = jwa.ES256 if isinstance(account_key, jwk.JWKEC) else jwa.RS256
        self.net = Network(account_key, alg=alg, ca_bundle=ca_bundle, timeout=request_timeout, deadline=self.deadline)
        self.net.read_environment_once(directory_url)
        with _acme_errors(f"fetching the directory {directory_url}"):
            directory = acme_client.ClientV2.get_directory(directory_url, self.net)
        self.client = acme_client.ClientV2(directory, self.net)
        # Issuer CN of the chain to prefer among the CA's alternates (see prefer_chain).
        self.preferred_chain: str | None = None

    def prefer_chain(self, issuer_cn: str | None) -> None:
        """Make ``download`` return the chain issued by ``issuer_cn`` when the CA offers one."""
        self.preferred_chain = issuer_cn

    @property
    def directory(self) -> messages.Directory:
        return self.client.directory

    @property
    def terms_of_service(self) -> str | None:
        terms: str | None = self.directory.meta.terms_of_service
        return terms

    @property
    def supports_ari(self) -> bool:
        try:
            self.directory["renewalInfo"]
        except KeyError:
            return False
        return True

    def renewal_info(self, cert_id: str) -> RenewalInfo:
        """GET ``renewalInfo/<CertID>`` (unauthenticated, RFC 9773 §4.1)."""
        url = self.directory["renewalInfo"].rstrip("/") + "/" + cert_id
        with _acme_errors("fetching renewal information"):
            response = self.net.get(url)
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
        return RenewalInfo(
            start, end, explanation if isinstance(explanation, str) else None, parse_retry_after(response)
        )

    # -- account --------------------------------------------------------------------------

    def register(self, email: str | None, *, eab: dict[str, Any] | None = None) -> messages.RegistrationResource:
        reg = messages.NewRegistration.from_data(
            email=email, terms_of_service_agreed=True, external_account_binding=eab
        )
        if eab is None and self.directory.meta.external_account_required:
            raise ACMEError(
                f"the CA at {self.directory_url} requires external account binding",
                "pass --eab-kid and the HMAC key (--eab-hmac-key-file or CERTMAN_EAB_HMAC_KEY)",
            )
        with _acme_errors("registering an account"):
            return self.client.new_account(reg)

    def use_account(self, uri: str) -> None:
        self.net.account = messages.RegistrationResource(uri=uri, body=messages.Registration())

    def query_account(self) -> messages.RegistrationResource:
        """The account as the CA sees it (POST-as-GET to the account URL, RFC 8555 §7.3.3)."""
        return self._post_account(None, "reading the account")

    def update_account(self, contact: tuple[str, ...]) -> messages.RegistrationResource:
        return self._post_account(messages.Registration(contact=contact), "updating the account")

    def deactivate_account(self) -> messages.RegistrationResource:
        return self._post_account(
            messages.Registration.from_json({"status": "deactivated"}), "deactivating the account"
        )

    def _post_account(self, body: messages.Registration | None, context: str) -> messages.RegistrationResource:
        uri = self.net.account.uri if self.net.account is not None else None
        if uri is None:
            raise ACMEError(f"{context}: no account URL", "this is a certman bug; please report it")
        with _acme_errors(context):
            response = self.client._post(uri, body)
            return messages.RegistrationResource(body=messages.Registration.from_json(response.json()), uri=uri)

    def change_account_key(self, inner: Any, new_key: Any) -> None:
        """POST a keyChange (RFC 8555 §7.3.5) signed by the current key, then sign with ``new_key``.

        ``inner`` is the josepy JWS signed by ``new_key`` (see ``certman.ca.accounts.rollover``).
        """
        from josepy import jwa, jwk

        url = self.directory["keyChange"]
        with _acme_errors("rolling the account key over"):
            self.client._post(url, inner)
        self.net.key = new_key
        self.net.alg = jwa.ES256 if isinstance(new_key, jwk.JWKEC) else jwa.RS256
        self.account_key = new_key

    def revoke(self, cert_der: bytes, reason: int) -> None:
        """Revoke a certificate, signed by the account (or, with no account set, the certificate's key)."""
        from cryptography import x509

        with _acme_errors("revoking the certificate"):
            self.client.revoke(x509.load_der_x509_certificate(cert_der), reason)

    # -- order ----------------------------------------------------------------------------

    def new_order(
        self,
        identifiers: tuple[Identifier, ...],
        csr_pem: bytes,
        *,
        profile: str | None = None,
        replaces: str | None = None,
    ) -> messages.OrderResource:
        if profile is not None:
            from .profiles import check_profile

            check_profile(self.directory.meta.profiles, profile, self.directory_url)
        body = NewOrder(
            identifiers=[messages.Identifier(typ=messages.IdentifierType(i.type), value=i.value) for i in identifiers],
            profile=profile,
            replaces=replaces,
        )
        with _acme_errors("creating the order"):
            response = self.client._post(self.directory["newOrder"], body)
            order = messages.Order.from_json(response.json())
            authzs = [self.fetch_authorization(url) for url in order.authorizations]
        return messages.OrderResource(
            body=order, uri=response.headers.get("Location"), authorizations=authzs, csr_pem=csr_pem
        )

    def fetch_authorization(self, url: str) -> messages.AuthorizationResource:
        with _acme_errors("fetching an authorization"):
            response = self.client._post_as_get(url)
            raw = response.json()
            _check_raw_tokens(raw)
            return messages.AuthorizationResource(body=messages.Authorization.from_json(raw), uri=url)

    def answer(self, challb: messages.ChallengeBody, response: Any) -> None:
        with _acme_errors("answering a challenge"):
            self.client.answer_challenge(challb, response)

    def wait_authorizations(self, urls: list[str]) -> None:
        """Poll until every authorization leaves ``pending``; raise if any is not valid."""
        failures: list[str] = []
        for url in urls:
            authz = self._poll(
                functools.partial(self._get_json, url, messages.Authorization),
                lambda body: body.status not in (messages.STATUS_PENDING, messages.STATUS_PROCESSING),
                "validation",
            )
            if authz.status != messages.STATUS_VALID:
                failures.append(_authz_failure(authz))
        if failures:
            raise AuthorizationFailed(
                "the CA could not validate " + "; ".join(failures),
                "make sure the challenge is reachable from the CA; see `certman doctor`",
            )

    def finalize(self, order: messages.OrderResource, *, fetch_alternatives: bool = False) -> OrderResult:
        """Finalize with the order's CSR, wait for the certificate and download it."""
        with _acme_errors("finalizing the order"):
            try:
                self.client.begin_finalization(order)
            except messages.Error as error:
                if error.code != "orderNotReady":
                    raise
        return self.complete_order(order.uri, fetch_alternatives=fetch_alternatives)

    def fetch_order(self, order_url: str) -> messages.Order:
        """The order's current body, e.g. to continue an order a previous run left."""
        body, _ = self._get_json(order_url, messages.Order)
        return body

    def complete_order(self, order_url: str, *, fetch_alternatives: bool = False) -> OrderResult:
        """Wait for a finalized order to become valid and download its certificate."""
        body = self._poll(
            lambda: self._get_json(order_url, messages.Order),
            lambda b: b.status in (messages.STATUS_VALID, messages.STATUS_INVALID),
            "issuance",
        )
        if body.status != messages.STATUS_VALID or body.certificate is None:
            detail = body.error.detail if body.error is not None else "no reason given"
            raise ACMEError(f"the CA refused to issue the certificate: {detail}")
        return self.download(body.certificate, order_url, fetch_alternatives=fetch_alternatives)

    def download(self, cert_url: str, order_url: str, *, fetch_alternatives: bool = False) -> OrderResult:
        with _acme_errors("downloading the certificate"):
            response = self.client._post_as_get(cert_url)
            alternatives: list[str] = []
            if fetch_alternatives or self.preferred_chain:
                for url in self.client._get_links(response, "alternate"):
                    alternatives.append(self.client._post_as_get(url).text)
        if self.preferred_chain:
            from .chains import pick_chain

            chosen = pick_chain([response.text, *alternatives], self.preferred_chain)
            others = tuple(c for c in [response.text, *alternatives] if c is not chosen)
            return OrderResult(chosen, others, order_url)
        return OrderResult(response.text, tuple(alternatives), order_url)

    # -- polling --------------------------------------------------------------------------

    def _get_json(self, url: str, kind: type[T]) -> tuple[T, float | None]:
        with _acme_errors("polling"):
            response = self.client._post_as_get(url)
            return kind.from_json(response.json()), parse_retry_after(response)  # type: ignore[attr-defined]

    def _poll(self, fetch: Callable[[], tuple[T, float | None]], done: Callable[[T], bool], what: str) -> T:
        for delay in _poll_delays():
            body, retry_after = fetch()
            if done(body):
                return body
            wait = retry_after if retry_after is not None else delay
            if time.monotonic() + wait > self.deadline:
                break
            time.sleep(wait)
        raise CAUnreachable(
            f"timed out waiting for {what} at the CA", "the CA is slow; the next run continues, or raise --timeout"
        )


class NewOrder(messages.NewOrder):
    """newOrder with RFC 9773's ``replaces``, which the ``acme`` library lacks."""

    replaces: str | None = json_util.field("replaces", omitempty=True)


def _rfc3339(value: Any) -> datetime.datetime:
    if not isinstance(value, str):
        raise ValueError(value)
    moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(value)
    return moment.astimezone(datetime.UTC)


def _poll_delays() -> Iterator[float]:
    delay = POLL_START
    while True:
        yield delay
        delay = min(delay * POLL_FACTOR, POLL_MAX)


def _check_raw_tokens(authz: Any) -> None:
    """Check every challenge token as the CA sent it.

    The library decodes tokens leniently (base64 skips characters such as '.') and
    re-encodes them, which would hide a hostile token; the check must see the original.
    """
    from ..solvers.http01 import check_token

    challenges = authz.get("challenges", []) if isinstance(authz, dict) else []
    for challenge in challenges:
        if isinstance(challenge, dict) and "token" in challenge:
            check_token(str(challenge["token"]))


def _authz_failure(authz: messages.Authorization) -> str:
    errors = [c.error for c in authz.challenges if c.error is not None]
    detail = errors[0].detail if errors and errors[0].detail else f"authorization is {authz.status}"
    return f"{authz.identifier.value}: {detail}"


@contextlib.contextmanager
def _acme_errors(context: str) -> Iterator[None]:
    """Turn library and protocol exceptions into certman errors."""
    try:
        yield
    except CertmanError:
        raise
    except messages.Error as exc:
        raise problem_error(exc, context) from exc
    except _Transient as exc:
        raise CAUnreachable(exc.what, "check that the CA is up; the next run retries") from exc
    except (jose_errors.DeserializationError, ValueError) as exc:
        raise ACMEError(f"{context}: the CA sent a malformed response") from exc
    except (acme_errors.Error, requests.exceptions.RequestException) as exc:
        raise ACMEError(f"{context}: {exc}") from exc
