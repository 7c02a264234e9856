"""An account the CA forgot (a CA reset) or another client deactivated, replaced unattended.

The CA says so on the first signed request: ``accountDoesNotExist`` for an account it does
not know, ``unauthorized`` for a deactivated one (RFC 8555 §6.7, §7.3.6). ``unauthorized``
also answers other refusals, so the account itself is asked (POST-as-GET, §7.3.3) before
anything changes. A gone account is replaced by a new one with a new key and the stored
contact (the terms were agreed when the first was registered), the old one is archived,
and the interrupted work runs once more. A CA that requires external account binding
cannot be re-registered this way, since the EAB HMAC key is never stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from ..errors import ACMEError
from ..keystore import FileKeystore
from ..keystore.times import Clock, utc_now
from .accounts import AccountSettings, CAEndpoint, account_jwk, replace_account
from .session import AcmeSession

T = TypeVar("T")

log = logging.getLogger(__name__)

# The problem types (last part of urn:ietf:params:acme:error:*) of a CA refusing the account.
ACCOUNT_REFUSED = ("accountDoesNotExist", "unauthorized")
GONE_STATUSES = ("deactivated", "revoked")


def with_account_recovery(
    run: Callable[[], T],
    keystore: FileKeystore,
    ca: CAEndpoint,
    account: AccountSettings,
    *,
    clock: Clock = utc_now,
) -> T:
    """``run()``; if the CA refused because the stored account is gone, replace it and run once more.

    Raises what ``run`` raises when the account is fine, and ``ACMEError`` (exit 4) naming
    the command to run when the CA requires external account binding and ``account.eab``
    is not given.
    """
    stored = keystore.load_account(ca.account_id)
    lost_uri = stored[1].uri if stored is not None else None
    try:
        return run()
    except ACMEError as exc:
        if lost_uri is None or _problem(exc) not in ACCOUNT_REFUSED:
            raise
        if not replace_if_gone(keystore, ca, account, lost_uri, clock=clock):
            raise
    return run()


def replace_if_gone(
    keystore: FileKeystore, ca: CAEndpoint, account: AccountSettings, lost_uri: str, *, clock: Clock = utc_now
) -> bool:
    """Whether the account at ``lost_uri`` was replaced: by this call when the CA no longer
    accepts it, or by another run while this one waited for the keystore lock.

    False when the CA still accepts it. Raises ``ACMEError`` for an EAB CA without
    ``account.eab``, and what the CA answers to the new registration.
    """
    ca_key = ca.account_id
    with keystore.lock_keystore():
        stored = keystore.load_account(ca_key)
        if stored is None or stored[1].uri != lost_uri:
            return stored is not None
        session = AcmeSession(
            ca.directory_url,
            account_jwk(stored[0], keystore.layout.account_key(ca_key)),
            ca_bundle=ca.ca_bundle,
            timeout=ca.timeout,
        )
        session.use_account(lost_uri)
        if not _gone(session):
            return False
        log.warning("the account %s is gone at %s (a CA reset, or deactivated elsewhere)", lost_uri, ca.directory_url)
        if account.eab is None and session.directory.meta.external_account_required:
            contact = ",".join(c.removeprefix("mailto:") for c in stored[1].contact)
            raise ACMEError(
                f"the account {lost_uri} is gone at {ca.directory_url}, and this CA requires "
                "external account binding, whose HMAC key certman does not store",
                f"register a new account: certman account register --new --server {ca.directory_url} "
                + (f"--ca-bundle {ca.ca_bundle} " if ca.ca_bundle else "")
                + (f"--email {contact} " if contact else "")
                + "--agree-tos --eab-kid KID --eab-hmac-key-file FILE",
            )
        emails = ",".join(c.removeprefix("mailto:") for c in stored[1].contact if c.startswith("mailto:"))
        renewed = AccountSettings(email=emails or None, agree_tos=True, eab=account.eab)
        replace_account(keystore, ca, renewed, clock=clock)
    return True


def _gone(session: AcmeSession) -> bool:
    try:
        regr = session.query_account()
    except ACMEError as exc:
        if _problem(exc) in ACCOUNT_REFUSED:
            return True
        raise
    return regr.body.status in GONE_STATUSES


def _problem(exc: ACMEError) -> str:
    return (exc.problem_type or "").rsplit(":", 1)[-1]
