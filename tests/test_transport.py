"""certman's retry, backoff, nonce and deadline policy, through the injectable transport.

Unit tests of our timing logic against a scripted CA and a clock that moves only when
slept: what a real CA answers is tested against Pebble (test_acme_retries.py).
"""

from __future__ import annotations

import datetime

import pytest
import requests
from acme import messages
from cryptography.hazmat.primitives.asymmetric import ec
from fixtures.scripted_ca import (
    DIRECTORY_URL,
    ROOT,
    Reply,
    ScriptedCA,
    StoppedClock,
    problem,
    scripted_transport,
)
from josepy import jwk

from certman.ca.deadline import certificate_deadline, current_deadline
from certman.ca.session import AcmeSession
from certman.ca.transport import BAD_NONCE_RETRIES, TRANSIENT_RETRIES, AcmeTransport
from certman.errors import ACMEError, CAUnreachable, RateLimited
from certman.names import Identifier

RESOURCE = "/order/1"
ORDER_URL = f"{ROOT}{RESOURCE}"


@pytest.fixture
def ca() -> ScriptedCA:
    return ScriptedCA()


@pytest.fixture
def clock() -> StoppedClock:
    return StoppedClock()


def account_key() -> jwk.JWK:
    return jwk.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


def signed(transport: AcmeTransport) -> AcmeTransport:
    transport.use_key(account_key())
    transport.use_account(f"{ROOT}/account/1")
    transport.use_nonce_url(f"{ROOT}/nonce")
    return transport


def test_backoff_doubles_with_each_transient_fault_until_the_ca_recovers(ca, clock):
    ca.script(RESOURCE, *[Reply(503)] * TRANSIENT_RETRIES)
    bounds: list[tuple[float, float]] = []

    def jitter(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    response = signed(scripted_transport(ca, clock, jitter=jitter)).post(ORDER_URL, None)

    assert response.json() == {"status": "valid"}
    # Full jitter: each delay is drawn from [0, bound], and the bound doubles.
    assert bounds == [(0, 0.5), (0, 1.0), (0, 2.0), (0, 4.0)]
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert ca.count("POST", RESOURCE) == TRANSIENT_RETRIES + 1


def test_the_delay_is_the_one_the_jitter_draws(ca, clock):
    ca.script(RESOURCE, Reply(502), Reply(500))

    signed(scripted_transport(ca, clock, jitter=lambda low, high: high / 4)).post(ORDER_URL, None)

    assert clock.sleeps == [0.125, 0.25]


def test_transient_faults_stop_after_the_retry_budget(ca, clock):
    ca.script(RESOURCE, *[Reply(503)] * (TRANSIENT_RETRIES + 5))

    with pytest.raises(CAUnreachable, match="answered 503"):
        signed(scripted_transport(ca, clock)).post(ORDER_URL, None)

    assert ca.count("POST", RESOURCE) == TRANSIENT_RETRIES + 1
    assert len(clock.sleeps) == TRANSIENT_RETRIES


def test_the_cas_retry_after_replaces_the_backoff(ca, clock):
    ca.script(RESOURCE, Reply(503, headers={"Retry-After": "7"}), Reply(503, headers={"Retry-After": "0"}))

    def no_jitter(low: float, high: float) -> float:
        raise AssertionError("the backoff must not be drawn when the CA said how long to wait")

    signed(scripted_transport(ca, clock, jitter=no_jitter)).post(ORDER_URL, None)

    assert clock.sleeps == [7.0, 0.0]


def test_a_retry_after_past_the_deadline_gives_up_at_once_saying_when_to_come_back(ca, clock):
    ca.script(RESOURCE, Reply(503, headers={"Retry-After": "600"}))
    asked_at = datetime.datetime.now(datetime.UTC)

    with pytest.raises(CAUnreachable) as caught:
        signed(scripted_transport(ca, clock, timeout=60)).post(ORDER_URL, None)

    assert clock.sleeps == []
    assert ca.count("POST", RESOURCE) == 1
    assert caught.value.retry_after is not None
    assert 590 <= (caught.value.retry_after - asked_at).total_seconds() <= 610


def test_backoff_never_sleeps_past_the_deadline(ca, clock):
    ca.script(RESOURCE, *[Reply(503)] * TRANSIENT_RETRIES)
    start = clock.now

    with pytest.raises(CAUnreachable):
        signed(scripted_transport(ca, clock, timeout=2.0)).post(ORDER_URL, None)

    # 0.5 + 1.0 fit in 2 s; the next 2.0 would end past the deadline, so it is not slept.
    assert clock.sleeps == [0.5, 1.0]
    assert clock.now - start <= 2.0


def test_each_socket_wait_is_bounded_by_what_is_left_of_the_deadline(ca, clock):
    refused = requests.exceptions.ConnectionError("Connection refused")
    ca.script(RESOURCE, refused, refused)

    signed(scripted_transport(ca, clock, timeout=10.0, request_timeout=30.0)).post(ORDER_URL, None)

    posts = ca.posts(RESOURCE)
    assert [p.timeout for p in posts] == [10.0, 9.5, 8.5]


def test_connection_errors_and_truncated_bodies_are_retried(ca, clock):
    ca.script(
        RESOURCE,
        requests.exceptions.ConnectionError("Connection refused"),
        requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"),
        requests.exceptions.ReadTimeout("timed out"),
    )

    response = signed(scripted_transport(ca, clock)).post(ORDER_URL, None)

    assert response.json() == {"status": "valid"}
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_a_bad_nonce_is_retried_at_once_with_the_nonce_its_error_carried(ca, clock):
    ca.script(RESOURCE, problem("badNonce"), problem("badNonce"), problem("badNonce"))

    response = signed(scripted_transport(ca, clock)).post(ORDER_URL, None)

    assert response.json() == {"status": "valid"}
    assert clock.sleeps == []
    # One newNonce for the first POST; every retry signs the nonce of the error before it.
    assert ca.count("HEAD", "/nonce") == 1
    used = [p.nonce for p in ca.posts(RESOURCE)]
    assert used == ca.issued[:4]
    assert len(set(used)) == len(used)


def test_no_nonce_is_spent_twice_across_requests_and_faults(ca, clock):
    ca.script(RESOURCE, problem("badNonce"), Reply(503), problem("badNonce"))
    transport = signed(scripted_transport(ca, clock))

    for _ in range(3):
        transport.post(ORDER_URL, None)

    used = [s.nonce for s in ca.sent if s.method == "POST"]
    assert len(used) == 6
    assert len(set(used)) == len(used)
    assert set(used) <= set(ca.issued)


def test_bad_nonces_stop_after_their_budget(ca, clock):
    ca.script(RESOURCE, *[problem("badNonce")] * (BAD_NONCE_RETRIES + 5))

    with pytest.raises(messages.Error) as caught:
        signed(scripted_transport(ca, clock)).post(ORDER_URL, None)

    assert caught.value.code == "badNonce"
    assert ca.count("POST", RESOURCE) == BAD_NONCE_RETRIES + 1


def test_429_is_a_rate_limit_with_its_retry_after_and_is_not_retried(ca, clock):
    ca.script(RESOURCE, problem("rateLimited", status=429, **{"Retry-After": "3600"}))

    with pytest.raises(messages.Error) as caught:
        signed(scripted_transport(ca, clock)).post(ORDER_URL, None)

    assert caught.value.code == "rateLimited"
    assert caught.value.retry_after == 3600.0
    assert clock.sleeps == []
    assert ca.count("POST", RESOURCE) == 1


def test_a_429_to_the_nonce_request_without_a_problem_document_is_a_rate_limit(ca, clock):
    ca.script("/nonce", Reply(429, headers={"Retry-After": "120"}))

    with pytest.raises(messages.Error) as caught:
        signed(scripted_transport(ca, clock)).post(ORDER_URL, None)

    assert caught.value.code == "rateLimited"
    assert caught.value.retry_after == 120.0
    assert ca.count("POST", RESOURCE) == 0


def test_plain_http_is_refused_before_anything_is_sent_there(ca, clock):
    with pytest.raises(ACMEError, match="non-https"):
        signed(scripted_transport(ca, clock)).post("http://ca.test/order/1", None)

    assert [(s.method, s.path) for s in ca.sent] == [("HEAD", "/nonce")]


def test_a_redirect_is_refused_not_followed(ca, clock):
    ca.script(RESOURCE, Reply(301, headers={"Location": "http://ca.test/elsewhere"}))

    with pytest.raises(ACMEError, match="redirected"):
        signed(scripted_transport(ca, clock)).post(ORDER_URL, None)

    assert [s.path for s in ca.sent if s.method == "POST"] == [RESOURCE]


# -- the session over an injected transport ---------------------------------------------------


def processing(retry_after: str | None = None) -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(200, {"status": "processing", "identifiers": [], "finalize": f"{ROOT}/finalize"}, headers)


def valid_order() -> Reply:
    body = {"status": "valid", "identifiers": [], "finalize": f"{ROOT}/finalize", "certificate": f"{ROOT}/cert"}
    return Reply(200, body)


def session_over(ca: ScriptedCA, clock: StoppedClock, *, timeout: float = 90.0) -> AcmeSession:
    session = AcmeSession(DIRECTORY_URL, account_key(), transport=scripted_transport(ca, clock, timeout=timeout))
    session.use_account(f"{ROOT}/account/1")
    return session


def test_the_session_polls_an_order_through_its_transport_growing_the_delay(ca, clock):
    ca.script(RESOURCE, processing(), processing(), processing(), valid_order())

    result = session_over(ca, clock).complete_order(ORDER_URL)

    assert result.order_url == ORDER_URL
    assert clock.sleeps == pytest.approx([0.01, 0.016, 0.0256])


def test_the_session_polls_after_the_cas_retry_after(ca, clock):
    ca.script(RESOURCE, processing(retry_after="3"), valid_order())

    session_over(ca, clock).complete_order(ORDER_URL)

    assert clock.sleeps == [3.0]


def test_polling_stops_at_the_deadline(ca, clock):
    ca.script(RESOURCE, *[processing(retry_after="4")] * 10)
    start = clock.now

    with pytest.raises(CAUnreachable, match="timed out waiting for issuance"):
        session_over(ca, clock, timeout=10.0).complete_order(ORDER_URL)

    assert clock.sleeps == [4.0, 4.0]
    assert clock.now - start <= 10.0


def test_the_session_turns_a_rate_limit_into_rate_limited_with_when(ca, clock):
    ca.script("/order", problem("rateLimited", status=429, **{"Retry-After": "3600"}))
    asked_at = datetime.datetime.now(datetime.UTC)

    with pytest.raises(RateLimited, match="creating the order") as caught:
        session_over(ca, clock).new_order((Identifier("dns", "a.example"),), b"")

    assert caught.value.retry_after is not None
    assert 3590 <= (caught.value.retry_after - asked_at).total_seconds() <= 3610


def test_every_session_of_a_certificate_shares_its_deadline_and_none_sends_after_it(ca, clock):
    with certificate_deadline(5, monotonic=clock.monotonic):
        AcmeSession(DIRECTORY_URL, account_key(), transport=scripted_transport(ca, clock, timeout=90))
        # Each socket wait is bounded by the certificate's deadline, not the session's 90 s.
        assert ca.sent[-1].timeout == 5
        clock.sleep(3)
        AcmeSession(DIRECTORY_URL, account_key(), transport=scripted_transport(ca, clock, timeout=90))
        assert ca.sent[-1].timeout == 2
        clock.sleep(2)
        sent = len(ca.sent)

        with pytest.raises(CAUnreachable) as failure:
            AcmeSession(DIRECTORY_URL, account_key(), transport=scripted_transport(ca, clock, timeout=90))

    assert (
        failure.value.message
        == f"gave up on the ACME server at {DIRECTORY_URL}: the deadline passed (--timeout 5 s for this certificate)"
    )
    assert len(ca.sent) == sent


def test_a_nested_certificate_deadline_keeps_the_earlier_one(clock):
    with certificate_deadline(5, monotonic=clock.monotonic) as outer:
        with certificate_deadline(90, monotonic=clock.monotonic) as inner:
            assert inner is outer and current_deadline() is outer
        # A fallback CA's attempt starts its own.
        clock.sleep(5)
        with certificate_deadline(90, fresh=True, monotonic=clock.monotonic) as fallback:
            assert current_deadline() is fallback and fallback.remaining() == 90
        assert current_deadline() is outer
    assert current_deadline() is None
