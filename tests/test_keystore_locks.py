"""The certificate and run locks: concurrent runs order once; a lock held too long is a clear error."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
import services
from fixtures.fault_proxy import FaultProxy
from fixtures.issuing import issue_for, make_spec, wait_until

from certman.config import Settings
from certman.errors import KeystoreLocked
from certman.issuance.issue import IssueResult
from certman.keystore import FileKeystore, locks
from certman.renewal.job import RenewReport, renew


def _blocked_in_lock(threads: list[threading.Thread]) -> bool:
    frames = sys._current_frames()
    for thread in threads:
        frame = frames.get(thread.ident or -1)
        while frame is not None and not frame.f_code.co_filename.endswith("keystore/locks.py"):
            frame = frame.f_back
        if frame is None:
            return False
    return True


def test_two_runs_for_the_same_certificate_make_exactly_one_order(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    spec = make_spec(fault_proxy.directory_url, pebble, "a.example")
    results: list[IssueResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(issue_for(spec, fresh_keystore))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    # Hold the certificate's lock so both runs are known to wait for it.
    with fresh_keystore.lock_cert("a.example"):
        for thread in threads:
            thread.start()
        wait_until(lambda: _blocked_in_lock(threads), "both runs wait for the lock")
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert fault_proxy.count("POST", r"^/order-plz", succeeded=True) == 1
    assert {r.serial for r in results} == {results[0].serial}
    assert fresh_keystore.versions("a.example") == ["000001"]


def test_two_renew_runs_forced_to_overlap_make_exactly_one_order_per_certificate(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    # Two `certman renew` runs (a timer and an operator) that both planned to issue
    # the same certificates before either got the run lock.
    standalone = [{"name": "standalone", "address": "127.0.0.1", "port": pebble.http_port}]
    settings = Settings(
        server=fault_proxy.directory_url,
        ca_bundle=str(pebble.ca_bundle),
        agree_tos=True,
        keystore=fresh_keystore.root,
        timeout=30.0,
        certificates=({"names": ["a.example"], "solver": standalone}, {"names": ["b.example"], "solver": standalone}),
    )
    reports: list[RenewReport] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            # One job: the two certificates share the standalone solver's port.
            reports.append(renew(fresh_keystore, settings, jobs=1))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    with locks.hold(fresh_keystore.layout.renew_lock, timeout=5, what="the test"):
        for thread in threads:
            thread.start()
        # Both have planned "issue" for both names and now wait for the run lock.
        wait_until(lambda: _blocked_in_lock(threads), "both renew runs wait for the run lock")
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert fault_proxy.count("POST", r"^/order-plz", succeeded=True) == 2
    actions = sorted(tuple(r.action for r in report.results) for report in reports)
    assert actions == [("issued", "issued"), ("skipped", "skipped")]
    assert fresh_keystore.versions("a.example") == ["000001"]
    assert fresh_keystore.versions("b.example") == ["000001"]


def test_a_run_after_the_first_finished_issues_again(pebble: services.Pebble, fresh_keystore: FileKeystore) -> None:
    spec = make_spec(pebble.directory_url, pebble, "a.example")
    first = issue_for(spec, fresh_keystore)

    second = issue_for(spec, fresh_keystore)

    assert second.serial != first.serial
    assert second.version == "000002"


def test_a_lock_held_past_the_timeout_is_a_clear_error(tmp_path: Path) -> None:
    holder = FileKeystore(tmp_path / "keystore")
    waiter = FileKeystore(tmp_path / "keystore", lock_timeout=0.2)

    with holder.lock_cert("a.example"):
        with pytest.raises(KeystoreLocked, match=r"certificate a\.example is locked by another certman run"):
            with waiter.lock_cert("a.example"):
                pass
