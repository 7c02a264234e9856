"""What the CA offers beyond what certman knows is ignored or reported, never a crash
(issue 12, kind 10).

The fault proxy rewrites Pebble's real answers: authorizations gain the challenge types
Let's Encrypt staging and Boulder offer (``dns-persist-01``, ``dns-account-01``) and
members no RFC defines, orders report a status no RFC defines.
"""

from __future__ import annotations

from typing import Any

import pytest
import services
from fixtures.fault_proxy import FaultProxy
from fixtures.issuing import issue_for, make_spec

from certman.errors import ACMEError
from certman.keystore import FileKeystore

# Fault injection at the CA: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

AUTHZ = r"^/authZ/"
ORDER = r"^/my-order/"
NEW_ORDER = r"^/order-plz"
TOKEN = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"


def with_new_challenges(authz: dict[str, Any]) -> dict[str, Any]:
    base = authz["challenges"][0]["url"].rsplit("/", 1)[0]
    authz["challenges"] += [
        # draft-ietf-acme-dns-persist-01: no token, an issuer list instead.
        {"type": "dns-persist-01", "url": f"{base}/persist", "status": "pending", "issuer-domain-names": ["x"]},
        # draft-ietf-acme-dns-account-label-01.
        {"type": "dns-account-01", "url": f"{base}/account", "status": "pending", "token": TOKEN},
    ]
    authz["challenges"][0]["x-future-member"] = {"nested": [1, 2]}
    authz["x-future-member"] = "ignored"
    return authz


def only_new_challenges(authz: dict[str, Any]) -> dict[str, Any]:
    authz = with_new_challenges(authz)
    authz["challenges"] = [c for c in authz["challenges"] if c["type"].startswith(("dns-persist", "dns-account"))]
    return authz


def hostile_token_on_unknown_type(authz: dict[str, Any]) -> dict[str, Any]:
    base = authz["challenges"][0]["url"].rsplit("/", 1)[0]
    # A token certman would refuse for a challenge it answers: never used, so never checked.
    authz["challenges"].append({"type": "x-new-01", "url": f"{base}/x", "status": "pending", "token": "../../etc"})
    return authz


@pytest.mark.parametrize("edit", [with_new_challenges, hostile_token_on_unknown_type])
def test_unknown_challenge_types_and_members_are_ignored(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore, edit: Any
) -> None:
    fault_proxy.add(path=AUTHZ, method="POST", edit=edit)

    result = issue_for(make_spec(fault_proxy.directory_url, pebble, "new-types.example"), fresh_keystore)

    assert result.identifiers == ("new-types.example",)
    # Only the http-01 challenge was answered.
    assert all("/persist" not in s.path and "/account" not in s.path for s in fault_proxy.seen)


def test_only_unknown_challenge_types_is_an_error_listing_them(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore
) -> None:
    fault_proxy.add(path=AUTHZ, method="POST", edit=only_new_challenges)

    with pytest.raises(ACMEError) as failure:
        issue_for(make_spec(fault_proxy.directory_url, pebble, "no-known-type.example"), fresh_keystore)

    assert failure.value.message == (
        "the CA offers no http-01 challenge for no-known-type.example (only dns-persist-01, dns-account-01)"
    )
    assert failure.value.exit_code == 4


def with_unknown_status(order: dict[str, Any]) -> dict[str, Any]:
    order["status"] = "x-deferred"
    order.pop("certificate", None)
    order["x-future-member"] = {"why": "a CA extension"}
    return order


@pytest.mark.parametrize("where", [NEW_ORDER, ORDER])
def test_an_unknown_order_status_is_waited_on_and_the_order_completes(
    fault_proxy: FaultProxy, pebble: services.Pebble, fresh_keystore: FileKeystore, where: str, caplog
) -> None:
    fault_proxy.add(path=where, method="POST", edit=with_unknown_status, times=2)

    result = issue_for(make_spec(fault_proxy.directory_url, pebble, "new-status.example"), fresh_keystore)

    assert result.identifiers == ("new-status.example",)
    assert "order status 'x-deferred', which certman does not know" in caplog.text
