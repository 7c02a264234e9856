"""The behaviours of the ``Keystore`` contract (certman/keystore/contract.py), for any implementation.

Each function takes a fresh, empty store; ``tests/test_keystore_contract.py`` runs them
for every implementation its fixture yields. A new backend adds itself there.
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from certman.config import CertSpec, SolverSpec
from certman.errors import KeystoreLocked, UsageError
from certman.keys import key_to_pem
from certman.keystore import (
    AccountRecord,
    DeployState,
    Keystore,
    PendingOrder,
    RenewalState,
    RevocationMarker,
    VersionMeta,
)
from certman.names import normalise_all

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
NAME = "contract.example"


def spec(name: str = NAME) -> CertSpec:
    return CertSpec(
        name=name,
        identifiers=normalise_all([name]),
        server="https://ca.example/dir",
        solvers=(SolverSpec("standalone"),),
    )


def material(serial: str) -> tuple[bytes, bytes, VersionMeta]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(int(serial, 16))
        .not_valid_before(T0)
        .not_valid_after(T0 + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    meta = VersionMeta(serial, T0, T0 + datetime.timedelta(days=90), issuer="contract CA", issued_at=T0)
    return key_to_pem(key), cert.public_bytes(Encoding.PEM), meta


def store(keystore: Keystore, serial: str) -> str:
    key_pem, leaf_pem, meta = material(serial)
    with keystore.lock_cert(NAME):
        return keystore.store_version(spec(), key_pem, leaf_pem, b"", meta).version


def missing_items_read_as_empty(keystore: Keystore) -> None:
    assert keystore.read_index() == {}
    assert keystore.names() == []
    assert not keystore.has(NAME)
    assert keystore.read_state(NAME) == RenewalState()
    assert keystore.read_states([NAME]) == {NAME: RenewalState()}
    assert keystore.read_pending_order(NAME) is None
    assert keystore.read_revocation(NAME) is None
    assert keystore.versions(NAME) == []
    assert keystore.live_version(NAME) is None
    assert keystore.load_account("ca.example_dir") is None
    assert keystore.load_pending_account_key("ca.example_dir") is None
    assert keystore.account_cas() == []
    with pytest.raises(UsageError):
        keystore.read_spec(NAME)


def versions_are_numbered_and_the_last_is_live(keystore: Keystore) -> None:
    assert store(keystore, "01") == "000001"
    assert store(keystore, "02") == "000002"
    assert keystore.versions(NAME) == ["000001", "000002"]
    assert keystore.live_version(NAME) == "000002" and keystore.has(NAME)
    entry = keystore.read_index()[NAME]
    assert (entry.serial, entry.version, entry.identifiers) == ("02", "000002", (NAME,))
    assert keystore.read_meta(NAME, "000001").serial == "01"
    assert keystore.read_spec(NAME).to_dict() == spec().storable().to_dict()
    assert keystore.names() == [NAME]


def records_read_back_as_written(keystore: Keystore) -> None:
    store(keystore, "0a")
    state = RenewalState(
        last_attempt=T0, consecutive_failures=2, last_error="no", next_attempt=T0, deploy=DeployState(True, "0a")
    )
    keystore.write_state(NAME, state)
    assert keystore.read_state(NAME) == state
    account = AccountRecord("https://ca.example/acct/1", "https://ca.example/dir", ("mailto:a@example.org",), T0)
    with keystore.lock_keystore():
        keystore.save_account("ca.example_dir", b"account key", account)
    assert keystore.load_account("ca.example_dir") == (b"account key", account)
    assert keystore.account_cas() == ["ca.example_dir"]
    order = PendingOrder("https://ca.example/order/1", "https://ca.example/dir", (NAME,), T0, b"order key")
    with keystore.lock_cert(NAME):
        keystore.write_pending_order(NAME, order)
    assert keystore.read_pending_order(NAME) == order
    keystore.clear_pending_order(NAME)
    keystore.clear_pending_order(NAME)
    assert keystore.read_pending_order(NAME) is None


def a_revocation_holds_only_for_the_serial_it_names(keystore: Keystore) -> None:
    store(keystore, "0b")
    with keystore.lock_cert(NAME):
        keystore.mark_revoked(NAME, RevocationMarker("0b", "superseded", T0, "account"))
    assert keystore.read_revocation(NAME) == RevocationMarker("0b", "superseded", T0, "account")
    assert keystore.read_index()[NAME].revoked
    store(keystore, "0c")
    assert keystore.read_revocation(NAME) is None
    assert not keystore.read_index()[NAME].revoked


def archiving_takes_a_certificate_out_of_the_index(keystore: Keystore) -> None:
    store(keystore, "0d")
    with keystore.lock_cert(NAME):
        keystore.archive_cert(NAME, "20260101T000000Z")
    assert NAME not in keystore.read_index() and not keystore.has(NAME)
    with pytest.raises(UsageError), keystore.lock_cert(NAME):
        keystore.archive_cert(NAME, "20260101T000001Z")


def marked_states_show_in_the_index(keystore: Keystore) -> None:
    store(keystore, "0e")
    failing = RenewalState(consecutive_failures=1, next_attempt=T0, deploy=DeployState(True, "0e"))
    keystore.mark_states({NAME: failing, "never.stored.example": failing})
    entry = keystore.read_index()[NAME]
    assert (entry.backoff_until, entry.undeployed_serial) == (T0, "0e")
    assert "never.stored.example" not in keystore.read_index()
    keystore.mark_states({NAME: RenewalState()})
    entry = keystore.read_index()[NAME]
    assert (entry.backoff_until, entry.undeployed_serial) == (None, None)


def a_rewritten_spec_gives_the_index_its_renew_window(keystore: Keystore) -> None:
    store(keystore, "0e")
    with keystore.lock_cert(NAME):
        keystore.write_spec(replace(spec(), renew_before_days=20.0))
    assert keystore.read_spec(NAME).renew_before_days == 20.0
    assert keystore.read_index()[NAME].renew_before_days == 20.0
    assert keystore.read_index()[NAME].serial == "0e"


def a_held_lock_makes_another_holder_wait_then_fail(keystore: Keystore) -> None:
    # Needs a short lock timeout on ``keystore`` (the fixture sets one).
    failures: list[BaseException] = []

    def contend() -> None:
        try:
            with keystore.lock_cert(NAME):
                pass
        except KeystoreLocked as exc:
            failures.append(exc)

    with keystore.lock_cert(NAME):
        thread = threading.Thread(target=contend)
        thread.start()
        thread.join()
    assert len(failures) == 1
    with keystore.lock_cert(NAME):
        pass


BEHAVIOURS = [
    missing_items_read_as_empty,
    marked_states_show_in_the_index,
    versions_are_numbered_and_the_last_is_live,
    records_read_back_as_written,
    a_revocation_holds_only_for_the_serial_it_names,
    archiving_takes_a_certificate_out_of_the_index,
    a_rewritten_spec_gives_the_index_its_renew_window,
    a_held_lock_makes_another_holder_wait_then_fail,
]
