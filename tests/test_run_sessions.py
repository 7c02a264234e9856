"""Issue 15 item 1: one ACME session per CA per renew run, shared by all its jobs.

Counted at the fault proxy in front of the session Pebble, with the real ``certman``
run as the timer runs it: what ten parallel renewals cost the CA beyond the orders.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import services
from fixtures.cli import CertmanRun
from fixtures.fault_proxy import NEW_ORDER, AriAnswers, FaultProxy

# Ten renewals in parallel through the fault proxy, per test: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = ("/usr/bin/env", "-i", "PATH=/usr/bin:/bin")
NAMES = tuple(f"shared-{i}.sessions.example" for i in range(10))
# The Retry-After of an injected 429, in seconds.
QUIET = 3
# Seconds after the 429 within which requests sent before certman read it may still arrive.
IN_FLIGHT = 1.0
FINALIZE = "/finalize-order/"


@pytest.fixture
def ten_stored(certman: CertmanRun, fault_proxy: FaultProxy, pebble: services.Pebble) -> Path:
    """Ten certificates issued one by one through the proxy, which then forgets them."""
    flags = ["--server", fault_proxy.directory_url, "--ca-bundle", str(fault_proxy.ca_bundle), "--agree-tos"]
    http = ["--http-address", "127.0.0.1", "--http-port", str(pebble.http_port)]
    for name in NAMES:
        issued = certman("issue", name, *flags, *http)
        assert issued.exit_code == 0, issued.output
    fault_proxy.forget_requests()
    return certman.keystore


def renew_all(keystore: Path, *args: str) -> list[dict[str, str]]:
    done = subprocess.run(
        [*TIMER_ENV, CERTMAN, "--keystore", str(keystore), "renew", *args, "--json"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in done.stderr
    results: list[dict[str, str]] = json.loads(done.stdout)["certificates"]
    return results


def test_ten_parallel_renewals_fetch_the_directory_once_and_never_look_the_account_up(
    ten_stored: Path, fault_proxy: FaultProxy
) -> None:
    results = renew_all(ten_stored, "--force", "--jobs", "10")

    assert [r["action"] for r in results] == ["renewed"] * len(NAMES), results
    assert fault_proxy.count("GET", r"^/dir$") == 1
    # The account is the keystore's: no newAccount, no onlyReturnExisting lookup.
    assert fault_proxy.count("POST", r"^/sign-me-up$") == 0
    assert fault_proxy.count("POST", r"^/order-plz$", succeeded=True) == len(NAMES)


def test_ten_parallel_renewals_never_spend_a_nonce_twice(ten_stored: Path, fault_proxy: FaultProxy) -> None:
    renew_all(ten_stored, "--force", "--jobs", "10")

    with fault_proxy.lock:
        nonces = [s.nonce for s in fault_proxy.seen if s.method == "POST"]
    assert nonces and None not in nonces
    assert [n for n, times in Counter(nonces).items() if times > 1] == []


def test_renewal_information_lookups_share_the_runs_session(ten_stored: Path, fault_proxy: FaultProxy) -> None:
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    fault_proxy.ari = AriAnswers(default_window=(later, later + datetime.timedelta(days=1)))

    results = renew_all(ten_stored, "--jobs", "10")

    assert [r["action"] for r in results] == ["skipped"] * len(NAMES), results
    assert fault_proxy.count("GET", r"^/renewal-info/") == len(NAMES)
    assert fault_proxy.count("GET", r"^/dir$") == 1


def test_a_rate_limit_pauses_every_job_at_that_ca_until_its_retry_after(
    ten_stored: Path, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add(path=NEW_ORDER, method="POST", status=429, problem="rateLimited", retry_after=str(QUIET), times=1)

    results = renew_all(ten_stored, "--force", "--jobs", "10")

    assert sorted(r["action"] for r in results) == ["failed"] + ["renewed"] * (len(NAMES) - 1), results
    with fault_proxy.lock:
        limited = next(s.at for s in fault_proxy.seen if s.status == 429)
        arrivals = [s.at - limited for s in fault_proxy.seen]
        finalized = [s.at - limited for s in fault_proxy.seen if s.path.startswith(FINALIZE) and s.status == 200]
    # Requests already on the wire when the 429 was answered may land just after it;
    # after that, nothing reaches the CA until its Retry-After has passed, and the other
    # nine jobs finish their orders only then.
    assert [t for t in arrivals if IN_FLIGHT < t < QUIET] == []
    assert len(finalized) == len(NAMES) - 1
    assert min(finalized) >= QUIET


def test_jobs_whose_deadline_ends_within_the_pause_fail_as_rate_limited_without_a_request(
    ten_stored: Path, fault_proxy: FaultProxy
) -> None:
    fault_proxy.add(path=NEW_ORDER, method="POST", status=429, problem="rateLimited", retry_after="3600", times=1)

    results = renew_all(ten_stored, "--force", "--jobs", "10")

    assert [r["action"] for r in results] == ["failed"] * len(NAMES), results
    assert all("rate" in r["error"].lower() for r in results), results
    # Each job's state says to come back when the CA asked, as the job that hit the limit's does.
    assert all(_at(r["next_renewal"]) - _at(r["last_failure"]) > datetime.timedelta(minutes=59) for r in results)
    with fault_proxy.lock:
        limited = next(s.at for s in fault_proxy.seen if s.status == 429)
        late = [s for s in fault_proxy.seen if s.at - limited > IN_FLIGHT]
    assert late == []


def _at(moment: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))
