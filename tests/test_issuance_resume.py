"""An order left unfinished (CA still processing, download failed) is continued, not repeated."""

from __future__ import annotations

import os
import stat

import pytest
import services
from fixtures.fault_proxy import FaultProxy
from fixtures.issuing import issue_for, make_spec
from fixtures.snapshot import Entry, snapshot

from certman.errors import CAUnreachable
from certman.keystore import FileKeystore

NEW_ORDER = r"^/order-plz"
PENDING_FILES = {"certs/a.example/order.json", "certs/a.example/order-key.pem"}


def _seed(fault_proxy: FaultProxy, pebble: services.Pebble, keystore: FileKeystore) -> None:
    issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), keystore)
    fault_proxy.forget_requests()


def _without_pending(entries: dict[str, Entry]) -> dict[str, Entry]:
    return {k: v for k, v in entries.items() if k not in PENDING_FILES}


def test_an_order_still_processing_at_the_deadline_is_kept_with_its_key_0600(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    before = snapshot(fresh_keystore.root)
    fault_proxy.add(path=r"^/my-order/", method="POST", order_status="processing")

    with pytest.raises(CAUnreachable, match="timed out waiting for issuance"):
        issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore, timeout=3.0)

    pending = fresh_keystore.read_pending_order("a.example")
    assert pending is not None and "/my-order/" in pending.order_url
    key_path = fresh_keystore.root / "certs/a.example/order-key.pem"
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert _without_pending(snapshot(fresh_keystore.root)) == before


def test_the_next_run_continues_the_processing_order_without_a_new_one(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    spec = make_spec(fault_proxy.directory_url, pebble, "a.example")
    stuck = fault_proxy.add(path=r"^/my-order/", method="POST", order_status="processing")
    with pytest.raises(CAUnreachable):
        issue_for(spec, fresh_keystore, timeout=3.0)
    pending = fresh_keystore.read_pending_order("a.example")
    assert pending is not None
    fault_proxy.rules.remove(stuck)
    fault_proxy.forget_requests()

    result = issue_for(spec, fresh_keystore)

    assert fault_proxy.count("POST", NEW_ORDER) == 0
    assert fault_proxy.count("POST", r"^/chalZ/") == 0
    assert result.version == "000002"
    meta = (fresh_keystore.root / "certs/a.example/versions/000002/meta.json").read_text()
    assert pending.order_url in meta
    assert result.live.privkey.read_bytes() == pending.key_pem
    assert fresh_keystore.read_pending_order("a.example") is None


def test_a_failed_certificate_download_is_continued_by_the_next_run(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    spec = make_spec(fault_proxy.directory_url, pebble, "a.example")
    broken = fault_proxy.add(path=r"^/certZ/", method="POST", status=500, retry_after="0")
    with pytest.raises(CAUnreachable, match="answered 500"):
        issue_for(spec, fresh_keystore)
    assert fresh_keystore.read_pending_order("a.example") is not None
    fault_proxy.rules.remove(broken)
    fault_proxy.forget_requests()

    result = issue_for(spec, fresh_keystore)

    assert fault_proxy.count("POST", NEW_ORDER) == 0
    assert result.version == "000002"
    assert fresh_keystore.read_pending_order("a.example") is None


def test_a_kept_order_for_other_names_is_dropped_for_a_new_order(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    broken = fault_proxy.add(path=r"^/certZ/", method="POST", status=500, retry_after="0")
    with pytest.raises(CAUnreachable):
        issue_for(make_spec(fault_proxy.directory_url, pebble, "a.example"), fresh_keystore)
    fault_proxy.rules.remove(broken)
    fault_proxy.forget_requests()

    result = issue_for(
        make_spec(fault_proxy.directory_url, pebble, "a.example", "b.example", name="a.example"), fresh_keystore
    )

    assert fault_proxy.count("POST", NEW_ORDER, succeeded=True) == 1
    assert set(result.identifiers) == {"a.example", "b.example"}


def test_an_order_whose_finalization_failed_is_finalized_by_the_next_run_with_the_kept_key(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    spec = make_spec(fault_proxy.directory_url, pebble, "a.example")
    broken = fault_proxy.add(path=r"^/finalize-order/", method="POST", status=503, retry_after="0")
    with pytest.raises(CAUnreachable, match="answered 503"):
        issue_for(spec, fresh_keystore)
    pending = fresh_keystore.read_pending_order("a.example")
    assert pending is not None
    fault_proxy.rules.remove(broken)
    fault_proxy.forget_requests()

    result = issue_for(spec, fresh_keystore)

    assert fault_proxy.count("POST", NEW_ORDER) == 0
    assert fault_proxy.count("POST", r"^/finalize-order/", succeeded=True) == 1
    assert result.live.privkey.read_bytes() == pending.key_pem


def test_a_kept_order_the_ca_now_calls_invalid_is_dropped_for_a_new_order(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    _seed(fault_proxy, pebble, fresh_keystore)
    spec = make_spec(fault_proxy.directory_url, pebble, "a.example")
    broken = fault_proxy.add(path=r"^/certZ/", method="POST", status=500, retry_after="0")
    with pytest.raises(CAUnreachable):
        issue_for(spec, fresh_keystore)
    fault_proxy.rules.remove(broken)
    fault_proxy.add(path=r"^/my-order/", method="POST", order_status="invalid", times=1)
    fault_proxy.forget_requests()

    result = issue_for(spec, fresh_keystore)

    assert fault_proxy.count("POST", NEW_ORDER, succeeded=True) == 1
    assert result.version == "000002"
    assert fresh_keystore.read_pending_order("a.example") is None
