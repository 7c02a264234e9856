"""Tests of the test harness itself: if these fail, nothing end to end can pass."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.query
import pytest
import requests
import services
from cryptography import x509


def test_directory_lists_account_and_order_endpoints(pebble: services.Pebble) -> None:
    response = requests.get(pebble.directory_url, verify=str(pebble.ca_bundle), timeout=5)

    response.raise_for_status()
    directory = response.json()
    assert directory["newAccount"].startswith("https://127.0.0.1:")
    assert directory["newOrder"].startswith("https://127.0.0.1:")


def test_root_and_intermediate_are_x509_and_chain(pebble: services.Pebble) -> None:
    root = x509.load_pem_x509_certificate(pebble.root_pem().encode())
    intermediate = x509.load_pem_x509_certificate(pebble.intermediate_pem().encode())

    intermediate.verify_directly_issued_by(root)


def test_unknown_serial_has_no_status(pebble: services.Pebble) -> None:
    assert pebble.cert_status("0123456789abcdef") is None


def _query(pebble: services.Pebble, name: str, rdtype: str) -> dns.message.Message:
    assert pebble.dns_port is not None
    query = dns.message.make_query(name, rdtype)
    return dns.query.udp(query, "127.0.0.1", port=pebble.dns_port, timeout=2)


def test_challtestsrv_answers_ipv4_only(pebble: services.Pebble) -> None:
    a = _query(pebble, "anything.example.test.", "A")
    aaaa = _query(pebble, "anything.example.test.", "AAAA")

    # The A answer shows the DNS server is really answering, so the empty
    # AAAA answer means the ::1 default was cleared rather than a dead server.
    assert [rr.address for rrset in a.answer for rr in rrset] == ["127.0.0.1"]
    assert aaaa.answer == []


def test_challtestsrv_management_api_sets_txt(pebble: services.Pebble) -> None:
    pebble.challtestsrv("set-txt", {"host": "_acme-challenge.txt.test.", "value": "abc"})
    try:
        response = _query(pebble, "_acme-challenge.txt.test.", "TXT")
    finally:
        pebble.challtestsrv("clear-txt", {"host": "_acme-challenge.txt.test."})

    assert [s for rrset in response.answer for rr in rrset for s in rr.strings] == [b"abc"]


def test_missing_binary_names_the_apt_package() -> None:
    with pytest.raises(RuntimeError) as excinfo:
        services.require_binary("certman-no-such-tool", "certman-no-such-package")

    assert str(excinfo.value) == (
        "`certman-no-such-tool` not found: install it with `apt-get install certman-no-such-package`"
    )


def test_service_that_exits_during_startup_reports_its_log(tmp_path: Path) -> None:
    service = services.Service(
        name="failing",
        argv=["sh", "-c", "echo boom-from-child; exit 3"],
        log_path=tmp_path / "failing.log",
    )

    with pytest.raises(services.ServiceError, match="exited with 3") as excinfo:
        service.start(lambda: False)

    assert "boom-from-child" in str(excinfo.value)
    assert service not in services.RUNNING


def test_service_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    def not_yet() -> bool:
        raise ConnectionRefusedError("still starting")

    service = services.Service(name="stuck", argv=["sleep", "60"], log_path=tmp_path / "stuck.log")

    with pytest.raises(services.ServiceError, match="ConnectionRefusedError"):
        service.start(not_yet, timeout=0.2)

    assert service.process is not None
    assert service.process.poll() is not None
    assert service not in services.RUNNING
