"""One conversation with an ACME CA: the RFC 8555 protocol steps, in the order they happen.

directory (§7.1.1) -> account (§7.3) -> newOrder (§7.4) -> authorizations (§7.5) ->
answer (§7.5.1) -> poll -> finalize -> download (§7.4.2), plus renewal information
(RFC 9773), revocation (§7.6) and key change (§7.3.5).

The ``acme`` library's messages do the (de)serialisation; the wire (signing, nonces,
retries, deadline) is a ``Transport`` (``certman.ca.transport``), injectable for tests.
The library sleeps a fixed second between polls; polling here starts at 10 ms and honours
the CA's Retry-After. Library and protocol exceptions become ``certman.errors`` at this
boundary, each with the step it interrupted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import msgspec
import requests
from acme import errors as acme_errors
from acme import messages
from cryptography import x509
from josepy import json_util, jwk

from .. import progress
from ..errors import ACMEError, AuthorizationFailed, CAUnreachable
from ..names import Identifier
from . import replays
from .ari import RenewalInfo as RenewalInfo  # where callers have imported it from
from .features import feature_url
from .problems import certman_errors
from .retry_after import parse_retry_after
from .transport import REQUEST_TIMEOUT as REQUEST_TIMEOUT  # the session's default, so callers import it from here
from .transport import AcmeTransport, Transport
from .unknown import check_raw_tokens, known_statuses

T = TypeVar("T")

POLL_START = 0.01
POLL_FACTOR = 1.6
POLL_MAX = 2.0


class OrderResult(msgspec.Struct, frozen=True):
    fullchain_pem: str
    alternative_fullchains_pem: tuple[str, ...]
    order_url: str


class AcmeSession:
    """Account, order, authorizations, finalize and download against one ACME directory.

    ``timeout`` bounds the whole conversation and ``request_timeout`` each request, in
    seconds; both go to the default ``AcmeTransport`` and are unused when ``transport`` is
    given, as is ``http``, the ``requests.Session`` to send through (a shared pool's).
    Every method raises ``ACMEError`` (or its ``RateLimited`` and
    ``AuthorizationFailed``) when the CA refuses, and ``CAUnreachable`` or
    ``TLSVerifyFailed`` when it cannot be reached.
    """

    def __init__(
        self,
        directory_url: str,
        account_key: jwk.JWK,
        *,
        ca_bundle: str | None = None,
        timeout: float = 90.0,
        request_timeout: float = REQUEST_TIMEOUT,
        transport: Transport | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self.directory_url = directory_url
        self.account_key = account_key
        self.account_uri: str | None = None
        if transport is None:
            transport = AcmeTransport(
                directory_url, ca_bundle=ca_bundle, timeout=timeout, request_timeout=request_timeout, http=http
            )
        self.transport = transport
        transport.use_key(account_key)
        with certman_errors(f"fetching the directory {directory_url}"):
            self.directory = messages.Directory.from_json(transport.get(directory_url).json())
            try:
                transport.use_nonce_url(self.directory["newNonce"])
            except KeyError as exc:
                raise ValueError("no newNonce") from exc
        # Issuer CN of the chain to prefer among the CA's alternates (see prefer_chain).
        self.preferred_chain: str | None = None

    def prefer_chain(self, issuer_cn: str | None) -> None:
        """Make ``download`` return the chain issued by ``issuer_cn`` when the CA offers one."""
        self.preferred_chain = issuer_cn

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
        with certman_errors("fetching renewal information"):
            return RenewalInfo.of(self.transport.get(url))

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
        with certman_errors("registering an account"):
            response = self.transport.post(self.directory["newAccount"], reg)
            if response.status_code == 200 and "Location" in response.headers:
                # 200 is the CA's answer for a key it already knows (§7.3.1).
                raise acme_errors.ConflictError(response.headers["Location"])
            body = messages.Registration.from_json(response.json())
        uri = response.headers.get("Location")
        self.use_account(uri)
        return messages.RegistrationResource(body=body, uri=uri)

    def use_account(self, uri: str | None) -> None:
        """Sign as the account at ``uri`` (its ``kid``) from now on; None signs with the bare key."""
        self.account_uri = uri
        self.transport.use_account(uri)

    def query_account(self) -> messages.RegistrationResource:
        """The account as the CA sees it (POST-as-GET to the account URL, RFC 8555 §7.3.3)."""
        return self._post_account(None, "reading the account")

    def update_account(self, contact: tuple[str, ...]) -> messages.RegistrationResource:
        """Replace the account's contacts (RFC 8555 §7.3.2)."""
        return self._post_account(
            messages.Registration(contact=contact),
            "updating the account",
            lambda: replays.with_contact(self, contact),
        )

    def deactivate_account(self) -> messages.RegistrationResource:
        """Deactivate the account (RFC 8555 §7.3.6)."""
        return self._post_account(
            messages.Registration.from_json({"status": "deactivated"}),
            "deactivating the account",
            lambda: replays.deactivated(self),
        )

    def _post_account(
        self,
        body: messages.Registration | None,
        context: str,
        settled: Callable[[], messages.RegistrationResource | None] | None = None,
    ) -> messages.RegistrationResource:
        """POST ``body`` to the account. A change whose answer was lost is ``settled`` by
        reading the account back: the account as changed, or None to send it again."""
        uri = self.account_uri
        if uri is None:
            raise ACMEError(f"{context}: no account URL", "this is a certman bug; please report it")
        read_back: list[messages.RegistrationResource] = []

        def took() -> bool:
            assert settled is not None
            read_back[:] = [r for r in [settled()] if r is not None]
            return bool(read_back)

        with certman_errors(context):
            if settled is None:
                response: requests.Response | None = self.transport.post(uri, body)
            else:
                response = replays.post_changing(self.transport, uri, body, took)
            if response is None:
                return read_back[0]
            return messages.RegistrationResource(body=messages.Registration.from_json(response.json()), uri=uri)

    def change_account_key(self, inner: Any, new_key: Any) -> None:
        """POST a keyChange (RFC 8555 §7.3.5) signed by the current key, then sign with ``new_key``.

        ``inner`` is the josepy JWS signed by ``new_key`` (see ``certman.ca.accounts.rollover``).
        """
        url = feature_url(self.directory, "keyChange", "account key rollover")
        with certman_errors("account key rollover", optional_feature=True):
            replays.post_changing(self.transport, url, inner, lambda: replays.accepts_key(self, new_key))
        self.transport.use_key(new_key)
        self.account_key = new_key

    def revoke(self, cert_der: bytes, reason: int) -> None:
        """Revoke a certificate, signed by the account (or, with no account set, the certificate's key)."""
        body = messages.Revocation(certificate=x509.load_der_x509_certificate(cert_der), reason=reason)
        lost = False

        def ask_again() -> bool:
            # No resource to read back: the answer to the same request is the CA's state.
            nonlocal lost
            lost = True
            return False

        with certman_errors("revoking the certificate"):
            try:
                response = replays.post_changing(self.transport, self.directory["revokeCert"], body, ask_again)
            except messages.Error as error:
                if lost and error.code == "alreadyRevoked":
                    return
                raise
            if response is not None and response.status_code != 200:
                raise acme_errors.ClientError("Successful revocation must return HTTP OK status")

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
        with certman_errors("creating the order"):
            response = self.transport.post(self.directory["newOrder"], body)
            order = messages.Order.from_json(known_statuses(response.json(), "order"))
            authzs = [self.fetch_authorization(url) for url in order.authorizations]
        return messages.OrderResource(
            body=order, uri=response.headers.get("Location"), authorizations=authzs, csr_pem=csr_pem
        )

    def fetch_authorization(self, url: str) -> messages.AuthorizationResource:
        with certman_errors("fetching an authorization"):
            response = self.transport.post(url, None)
            raw = response.json()
            check_raw_tokens(raw)
            return messages.AuthorizationResource(
                body=messages.Authorization.from_json(known_statuses(raw, "authorization")), uri=url
            )

    def deactivate_authorization(self, url: str) -> str:
        """Give up an authorization (RFC 8555 §7.5.2); the status the CA answers ("deactivated")."""
        with certman_errors("deactivating an authorization"):
            body = messages.UpdateAuthorization(status=messages.STATUS_DEACTIVATED)
            answered = messages.Authorization.from_json(self.transport.post(url, body).json())
            return str(answered.status)

    def answer(self, challb: messages.ChallengeBody, response: Any) -> None:
        def answered_before() -> bool:
            now, _ = self._get_json(challb.uri, messages.ChallengeBody)
            return now.status != messages.STATUS_PENDING

        with certman_errors("answering a challenge"):
            answered = replays.post_changing(self.transport, challb.uri, response, answered_before)
            if answered is None:
                return
            if "up" not in answered.links:
                raise acme_errors.ClientError('"up" Link header missing')
            body = messages.ChallengeBody.from_json(known_statuses(answered.json(), "challenge"))
            if body.uri != challb.uri:
                raise acme_errors.UnexpectedUpdate(body.uri)

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
        with certman_errors("finalizing the order"):
            csr = messages.CertificateRequest(csr=x509.load_pem_x509_csr(order.csr_pem))
            try:
                # A lost answer: the order's status says whether the CA took the CSR.
                finalized = replays.post_changing(
                    self.transport,
                    order.body.finalize,
                    csr,
                    lambda: self.fetch_order(order.uri).status != messages.STATUS_READY,
                )
                if finalized is not None:
                    messages.Order.from_json(known_statuses(finalized.json(), "order"))
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
        with certman_errors("downloading the certificate"):
            response = self.transport.post(cert_url, None)
            alternatives: list[str] = []
            if fetch_alternatives or self.preferred_chain:
                for url in _links(response, "alternate"):
                    alternatives.append(self.transport.post(url, None).text)
        if self.preferred_chain:
            from .chains import pick_chain

            chosen = pick_chain([response.text, *alternatives], self.preferred_chain)
            others = tuple(c for c in [response.text, *alternatives] if c is not chosen)
            return OrderResult(chosen, others, order_url)
        return OrderResult(response.text, tuple(alternatives), order_url)

    # -- polling --------------------------------------------------------------------------

    def _get_json(self, url: str, kind: type[T]) -> tuple[T, float | None]:
        with certman_errors("polling"):
            response = self.transport.post(url, None)
            document = known_statuses(response.json(), kind.__name__.lower())
            return kind.from_json(document), parse_retry_after(response)  # type: ignore[attr-defined]

    def _poll(self, fetch: Callable[[], tuple[T, float | None]], done: Callable[[T], bool], what: str) -> T:
        with progress.waiting(f"{what} at the CA"):
            for delay in _poll_delays():
                body, retry_after = fetch()
                if done(body):
                    return body
                if not self.transport.wait(retry_after if retry_after is not None else delay):
                    break
        raise CAUnreachable(
            f"timed out waiting for {what} at the CA", "the CA is slow; the next run continues, or raise --timeout"
        )


class NewOrder(messages.NewOrder):
    """newOrder with RFC 9773's ``replaces``, which the ``acme`` library lacks."""

    replaces: str | None = json_util.field("replaces", omitempty=True)


def _links(response: requests.Response, relation: str) -> list[str]:
    """Every Link URL of ``relation``: ``response.links`` keeps only one per relation, and
    a CA may offer several alternate chains (§7.4.2)."""
    links = requests.utils.parse_header_links(response.headers.get("Link", ""))
    return [link["url"] for link in links if link.get("rel") == relation and "url" in link]


def _poll_delays() -> Iterator[float]:
    delay = POLL_START
    while True:
        yield delay
        delay = min(delay * POLL_FACTOR, POLL_MAX)


def _authz_failure(authz: messages.Authorization) -> str:
    errors = [c.error for c in authz.challenges if c.error is not None]
    detail = errors[0].detail if errors and errors[0].detail else f"authorization is {authz.status}"
    return f"{authz.identifier.value}: {detail}"
