"""The retry loop around every ACME request, against Pebble behind the fault proxy."""

from __future__ import annotations

import datetime
import email.utils
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import services
from fixtures.fault_proxy import FaultProxy
from fixtures.issuing import ACCOUNT, issue_for, make_spec
from fixtures.snapshot import snapshot

from certman.errors import ACMEError, CAUnreachable, RateLimited
from certman.issuance.issue import issue
from certman.keystore import FileKeystore

NEW_ORDER = r"^/order-plz"
ORDER = r"^/my-order/"


def _seed(fault_proxy: FaultProxy, pebble: services.Pebble, keystore: FileKeystore) -> None:
    """Register the account and store a first version, so failures have something to keep."""
    issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), keystore)
    fault_proxy.forget_requests()


def test_5xx_with_retry_after_is_retried_until_it_works(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    fault_proxy.add(path=NEW_ORDER, method="POST", status=503, retry_after="0", times=2)

    result = issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)

    assert result.serial
    assert fault_proxy.count("POST", NEW_ORDER, status=503) == 2
    assert fault_proxy.count("POST", NEW_ORDER, succeeded=True) == 1


def test_rate_limit_stops_the_certificate_with_retry_after_and_the_cas_detail(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    before = snapshot(fresh_keystore.root)
    fault_proxy.add(path=NEW_ORDER, method="POST", status=429, problem="rateLimited", retry_after="3600")
    asked_at = datetime.datetime.now(datetime.UTC)

    with pytest.raises(RateLimited) as caught:
        issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)

    assert "fault proxy: injected 429" in caught.value.message
    assert caught.value.retry_after is not None
    assert 3590 <= (caught.value.retry_after - asked_at).total_seconds() <= 3610
    assert fault_proxy.count("POST", NEW_ORDER) == 1
    assert snapshot(fresh_keystore.root) == before


def test_a_retry_after_given_as_an_http_date_is_understood(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    when = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(hours=2)
    fault_proxy.add(
        path=NEW_ORDER,
        method="POST",
        status=429,
        problem="rateLimited",
        retry_after=email.utils.format_datetime(when, usegmt=True),
    )

    with pytest.raises(RateLimited) as caught:
        issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)

    assert caught.value.retry_after is not None
    assert abs((caught.value.retry_after - when).total_seconds()) <= 5


def test_a_429_to_the_nonce_request_is_a_rate_limit_with_retry_after(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    before = snapshot(fresh_keystore.root)
    fault_proxy.add(path=r"^/nonce-plz", method="HEAD", status=429, retry_after="120")

    with pytest.raises(RateLimited, match="429") as caught:
        issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)

    assert caught.value.retry_after is not None
    assert fault_proxy.count("POST", NEW_ORDER) == 0
    assert snapshot(fresh_keystore.root) == before


def test_5xx_whose_retry_after_passes_the_deadline_fails_at_once_as_unreachable(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    before = snapshot(fresh_keystore.root)
    fault_proxy.add(path=NEW_ORDER, method="POST", status=503, retry_after="600")

    with pytest.raises(CAUnreachable, match="answered 503") as raised:
        issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)

    assert fault_proxy.count("POST", NEW_ORDER) == 1
    assert snapshot(fresh_keystore.root) == before
    # The CA's word on when to come back travels with the error, for renew to persist.
    retry_after = raised.value.retry_after
    assert retry_after is not None
    assert 590 <= (retry_after - datetime.datetime.now(datetime.UTC)).total_seconds() <= 600


def test_a_response_that_stalls_after_its_headers_times_out_and_is_retried(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    fault_proxy.add(path=ORDER, method="POST", stall=10.0, times=1)

    result = issue(
        make_spec(fault_proxy.directory_url, pebble, "a.example"),
        fresh_keystore,
        account=ACCOUNT,
        timeout=30.0,
        request_timeout=0.5,
    )

    assert result.version == "000002"
    assert fault_proxy.count("POST", ORDER) >= 2


@pytest.mark.slow
def test_a_stall_longer_than_the_run_deadline_fails_the_run_instead_of_outlasting_it(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    before = snapshot(fresh_keystore.root)
    # Shorter than the request timeout (30 s), longer than the run's deadline (3 s).
    fault_proxy.add(path=NEW_ORDER, method="POST", stall=20.0)

    with pytest.raises(CAUnreachable):
        issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore, timeout=3.0)

    assert snapshot(fresh_keystore.root) == before


def test_a_truncated_response_is_retried(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    fault_proxy.add(path=ORDER, method="POST", truncate=10, times=1)

    result = issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)

    assert result.version == "000002"


def test_a_plain_http_url_in_the_directory_is_refused_before_it_is_used(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    before = snapshot(fresh_keystore.root)
    fault_proxy.add(path=r"^/dir$", replace=("https://", "http://"))

    with pytest.raises(ACMEError, match="refusing non-https URL"):
        issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)

    assert fault_proxy.count("POST", NEW_ORDER) == 0
    assert snapshot(fresh_keystore.root) == before


def test_a_plain_http_url_in_an_order_is_refused(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    before = snapshot(fresh_keystore.root)
    fault_proxy.add(path=NEW_ORDER, method="POST", replace=("https://", "http://"))

    with pytest.raises(ACMEError, match="refusing non-https URL"):
        issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)

    assert fault_proxy.count("POST", r"^/authZ/") == 0
    assert snapshot(fresh_keystore.root) == before


def test_a_redirect_is_refused_not_followed(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    before = snapshot(fresh_keystore.root)
    fault_proxy.add(path=NEW_ORDER, method="POST", status=302, location="http://127.0.0.1:1/order-plz")

    with pytest.raises(ACMEError, match="redirected"):
        issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)

    assert snapshot(fresh_keystore.root) == before


# Its own Pebble: rejecting 30% of nonces is this test's subject, not the other tests' weather.
@pytest.fixture(scope="module")
def nonce_hostile_pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Pebble]:
    with services.start_pebble(
        tmp_path_factory.mktemp("pebble-nonce30"), env={"PEBBLE_WFE_NONCEREJECT": "30"}
    ) as server:
        yield server


@pytest.mark.slow
def test_twenty_of_twenty_issuances_succeed_when_the_ca_rejects_30_percent_of_nonces(
    nonce_hostile_pebble: services.Pebble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keystore = FileKeystore(tmp_path / "keystore")
    spec = make_spec(nonce_hostile_pebble.directory_url, nonce_hostile_pebble, "a.example")
    caplog.set_level(logging.DEBUG, logger="certman.ca.transport")

    serials = [issue_for(spec, keystore).serial for _ in range(20)]

    assert len(set(serials)) == 20
    # The CA really did reject nonces, so the 20 successes are the retry loop's work.
    assert sum("badNonce" in r.getMessage() for r in caplog.records) >= 20
