"""A state-changing request whose answer was lost is never sent again blindly (issue 12, kind 9).

The fault proxy forwards the request to Pebble, which acts on it, then answers the client
with a 503 or a truncated body. certman must read the resource back and continue from
what the CA did: one finalize, one challenge answer, one key change, reaching Pebble.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import services
from fixtures.fault_proxy import FaultProxy
from fixtures.issuing import ACCOUNT, issue_for, make_spec

from certman.ca.accounts import CAEndpoint, account_jwk, deactivate, register_account, rollover, update_email
from certman.ca.session import AcmeSession
from certman.keystore import FileKeystore, ca_id
from certman.lifecycle import revoke

FINALIZE = r"^/finalize-order/"
CHALLENGE = r"^/chalZ/"
KEY_CHANGE = r"^/rollover-account-key"
REVOKE = r"^/revoke-cert"
ACCOUNT_URL = r"^/my-account/"


def acted_on(fault_proxy: FaultProxy, pattern: str, *, answers_only: bool = False) -> int:
    """POSTs to ``pattern`` that Pebble accepted (2xx), whatever the client was told.

    With ``answers_only``, only those with a JWS payload (not a POST-as-GET)."""
    with fault_proxy.lock:
        return sum(
            1
            for s in fault_proxy.seen
            if s.method == "POST"
            and re.search(pattern, s.path)
            and 200 <= s.status < 300
            and (not answers_only or s.payload is not None)
        )


@pytest.mark.parametrize("fault", [{"answer_lost": 503}, {"truncate": 10}], ids=["503", "truncated"])
def test_a_finalize_whose_answer_is_lost_is_sent_once_and_the_order_is_read_back(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore, fault: dict[str, int]
) -> None:
    # Every finalize answer is lost: a second finalize would meet 403 orderNotReady again and again.
    fault_proxy.add(path=FINALIZE, method="POST", **fault)

    result = issue_for(make_spec(fault_proxy.directory_url, pebble, "lost-finalize.example"), fresh_keystore)

    assert result.identifiers == ("lost-finalize.example",)
    assert acted_on(fault_proxy, FINALIZE) == 1
    assert fault_proxy.count("POST", FINALIZE, status=403) == 0


def test_a_challenge_answer_whose_answer_is_lost_is_not_answered_again(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    fault_proxy.add(path=CHALLENGE, method="POST", answer_lost=503, times=1)

    result = issue_for(make_spec(fault_proxy.directory_url, pebble, "lost-answer.example"), fresh_keystore)

    assert result.identifiers == ("lost-answer.example",)
    assert acted_on(fault_proxy, CHALLENGE, answers_only=True) == 1


@pytest.fixture
def proxied_ca(fault_proxy: FaultProxy) -> CAEndpoint:
    return CAEndpoint(fault_proxy.directory_url, str(fault_proxy.ca_bundle), timeout=30.0)


def test_a_key_change_whose_answer_is_lost_is_read_back_with_the_new_key(
    fault_proxy: FaultProxy, proxied_ca: CAEndpoint, keystore: FileKeystore
) -> None:
    register_account(keystore, proxied_ca, ACCOUNT)
    fault_proxy.add(path=KEY_CHANGE, method="POST", answer_lost=503)

    rollover(keystore, proxied_ca)

    assert acted_on(fault_proxy, KEY_CHANGE) == 1
    key_pem, record = keystore.load_account(ca_id(proxied_ca.directory_url))  # type: ignore[misc]
    session = AcmeSession(proxied_ca.directory_url, account_jwk(key_pem), ca_bundle=proxied_ca.ca_bundle)
    session.use_account(record.uri)
    assert session.query_account().body.status == "valid"


def test_account_update_and_deactivation_whose_answers_are_lost_are_read_back(
    fault_proxy: FaultProxy, proxied_ca: CAEndpoint, keystore: FileKeystore
) -> None:
    register_account(keystore, proxied_ca, ACCOUNT)
    fault_proxy.add(path=ACCOUNT_URL, method="POST", answer_lost=503, payload_has="contact", times=1)

    updated = update_email(keystore, proxied_ca, ("lost@example.org",))

    assert updated.contact == ("mailto:lost@example.org",)
    fault_proxy.add(path=ACCOUNT_URL, method="POST", answer_lost=503, payload_has="status")
    assert deactivate(keystore, proxied_ca).status == "deactivated"
    assert acted_on(fault_proxy, ACCOUNT_URL, answers_only=True) == 2


def test_a_revocation_whose_answer_is_lost_is_done_when_the_ca_says_already_revoked(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore, tmp_path: Path
) -> None:
    issue_for(make_spec(fault_proxy.directory_url, pebble, "lost-revoke.example"), fresh_keystore)
    fault_proxy.add(path=REVOKE, method="POST", answer_lost=503)

    result = revoke(fresh_keystore, "lost-revoke.example", timeout=30.0)

    assert result.serial and acted_on(fault_proxy, REVOKE) == 1
    assert fresh_keystore.read_revocation("lost-revoke.example") is not None
