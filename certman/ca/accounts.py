"""ACME accounts: the session signed by the stored account, registration, and the
operations on an account (show, register, update contact, key rollover, deactivate).

One account per CA lives in the keystore (``accounts/<ca-id>/``). Registration is
RFC 8555 §7.3 (with §7.3.4 external account binding when the CA asks). Key rollover is
RFC 8555 §7.3.5 keyChange, which the ``acme`` library lacks: an inner JWS signed by
the new key (with its ``jwk``, no nonce) carrying the account URL and the old key,
posted inside an outer JWS signed by the old key.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import msgspec
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from josepy import jwk
from msgspec import structs

from ..errors import ACMEError, Unsupported, UsageError
from ..keys import key_to_pem, load_key
from ..keystore import AccountRecord, FileKeystore, ca_id
from ..keystore.keyfiles import ACCOUNT_HINT, check_private_key, load_private_key
from ..keystore.times import Clock, archive_stamp, encode_time, utc_now
from .eab import ExternalAccount
from .features import feature_url
from .session import REQUEST_TIMEOUT, AcmeSession

log = logging.getLogger(__name__)


class AccountSettings(msgspec.Struct, frozen=True):
    """Who registers with the CA, and whether they agreed to its terms."""

    email: str | None = None
    agree_tos: bool = False
    # Needed only when registering with a CA that requires external account binding.
    eab: ExternalAccount | None = None


class CAEndpoint(msgspec.Struct, frozen=True):
    """Where a CA is and how to reach it."""

    directory_url: str
    ca_bundle: str | None = None
    timeout: float = 90.0
    # The keystore's account id for this CA; None is the CA's own (``ca_id``). A dry run
    # names its own, so that it never touches the real account (issuance.rehearsal).
    account: str | None = None

    @property
    def account_id(self) -> str:
        return self.account or ca_id(self.directory_url)


class AccountInfo(msgspec.Struct, frozen=True):
    ca: str
    directory_url: str
    uri: str
    contact: tuple[str, ...]
    # The CA's view ("valid", "deactivated", ...); None when the CA was not asked.
    status: str | None
    key_thumbprint: str
    created_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ca": self.ca,
            "directory": self.directory_url,
            "uri": self.uri,
            "contact": list(self.contact),
            "status": self.status,
            "key_thumbprint": self.key_thumbprint,
            "created_at": self.created_at,
        }


def open_session(
    directory_url: str,
    keystore: FileKeystore,
    account: AccountSettings,
    *,
    ca_bundle: str | None,
    timeout: float,
    request_timeout: float = REQUEST_TIMEOUT,
    account_id: str | None = None,
    http: requests.Session | None = None,
) -> AcmeSession:
    """A session signed by this CA's stored account, registering one on first use.

    ``timeout`` bounds the whole conversation and ``request_timeout`` each request (seconds).
    ``account_id`` names the stored account to use instead of the CA's own ``ca_id`` (a
    dry run's); ``http`` the ``requests.Session`` to send through. Raises ``UsageError``
    when registering needs ``account.agree_tos``, ``ACMEError`` when the CA refuses, and
    ``CAUnreachable`` when it cannot be reached.
    """
    ca = account_id or ca_id(directory_url)
    stored = keystore.load_account(ca)
    if stored is None:
        with keystore.lock_keystore():
            # Another run may have registered while we waited for the lock.
            stored = keystore.load_account(ca)
            if stored is None:
                return _register(
                    directory_url,
                    ca,
                    keystore,
                    account,
                    ca_bundle=ca_bundle,
                    timeout=timeout,
                    request_timeout=request_timeout,
                    http=http,
                )
    if keystore.load_pending_account_key(ca) is not None:
        # A rollover died half-way: key.pem may be the key the CA no longer accepts, and
        # only `certman account` commands used to settle that, so unattended renewals
        # kept failing. Settle it here, under the keystore lock like a rollover itself.
        endpoint = CAEndpoint(directory_url, ca_bundle, timeout, account_id)
        with keystore.lock_keystore():
            _finish_interrupted_rollover(keystore, endpoint)
            stored = _stored(keystore, endpoint)
    key_pem, record = stored
    session = AcmeSession(
        directory_url,
        account_jwk(key_pem, keystore.layout.account_key(ca)),
        ca_bundle=ca_bundle,
        timeout=timeout,
        request_timeout=request_timeout,
        http=http,
    )
    session.use_account(record.uri)
    return session


def account_jwk(key_pem: bytes, source: Path | None = None) -> jwk.JWK:
    """The JWK of a PEM private key (ECDSA or RSA), as ACME signs with it.

    ``source`` is the key file it was read from: a key that does not load is then a
    ``KeystoreError`` (exit 3) naming that file, not a bare ValueError.
    """
    key = load_key(key_pem) if source is None else load_private_key(key_pem, source, ACCOUNT_HINT)
    return jwk.JWKEC(key=key) if isinstance(key, ec.EllipticCurvePrivateKey) else jwk.JWKRSA(key=key)


def _register(
    directory_url: str,
    ca: str,
    keystore: FileKeystore,
    account: AccountSettings,
    *,
    ca_bundle: str | None,
    timeout: float,
    request_timeout: float = REQUEST_TIMEOUT,
    http: requests.Session | None = None,
) -> AcmeSession:
    key = ec.generate_private_key(ec.SECP256R1())
    session = AcmeSession(
        directory_url,
        jwk.JWKEC(key=key),
        ca_bundle=ca_bundle,
        timeout=timeout,
        request_timeout=request_timeout,
        http=http,
    )
    terms = session.terms_of_service
    # A CA that publishes no terms (RFC 8555 §7.1.1 meta.termsOfService) has none to agree to.
    if not account.agree_tos and terms:
        raise UsageError(
            f"no account at {directory_url} yet, and registering needs agreement to the CA's terms ({terms})",
            "read them, then pass --agree-tos (or agree_tos = true in certman.toml)",
        )
    keystore.save_account(ca, key_to_pem(key), new_account(session, account))
    return session


def new_account(session: AcmeSession, account: AccountSettings) -> AccountRecord:
    """Register ``session``'s key as a new account (RFC 8555 §7.3, §7.3.4 EAB when
    ``account.eab``); the record to store. Agreement to the terms is the caller's to check.

    Raises ``ACMEError`` when the CA refuses (or requires EAB and none is given).
    """
    binding = account.eab.binding(session.account_key.public_key(), session.directory) if account.eab else None
    regr = session.register(account.email, eab=binding)
    log.info("registered account %s at %s", regr.uri, session.directory_url)
    return AccountRecord(
        uri=regr.uri, directory=session.directory_url, contact=tuple(regr.body.contact), created_at=utc_now()
    )


def _thumbprint(key: Any) -> str:
    from josepy import b64

    return b64.b64encode(key.thumbprint()).decode()


def _stored(keystore: FileKeystore, ca: CAEndpoint) -> tuple[bytes, AccountRecord]:
    stored = keystore.load_account(ca.account_id)
    if stored is None:
        raise UsageError(
            f"no account for {ca.directory_url} in {keystore.root}",
            f"register one: certman account register --server {ca.directory_url} --agree-tos",
        )
    check_private_key(stored[0], keystore.layout.account_key(ca.account_id), ACCOUNT_HINT)
    return stored


def _info(ca: CAEndpoint, key_pem: bytes, record: AccountRecord, status: str | None) -> AccountInfo:
    return AccountInfo(
        ca=ca_id(ca.directory_url),
        directory_url=ca.directory_url,
        uri=record.uri,
        contact=record.contact,
        status=status,
        key_thumbprint=_thumbprint(account_jwk(key_pem).public_key()),
        created_at=encode_time(record.created_at),
    )


def _session(keystore: FileKeystore, ca: CAEndpoint) -> AcmeSession:
    return open_session(ca.directory_url, keystore, AccountSettings(), ca_bundle=ca.ca_bundle, timeout=ca.timeout)


def show_account(keystore: FileKeystore, ca: CAEndpoint, *, ask_ca: bool = True) -> AccountInfo:
    """The stored account, with its status as the CA reports it unless ``ask_ca`` is false.

    Asking the CA also finishes a rollover that a crash interrupted.
    """
    if not ask_ca:
        key_pem, data = _stored(keystore, ca)
        return _info(ca, key_pem, data, None)
    with keystore.lock_keystore():
        _finish_interrupted_rollover(keystore, ca)
        key_pem, data = _stored(keystore, ca)
    regr = _session(keystore, ca).query_account()
    return _info(ca, key_pem, structs.replace(data, contact=tuple(regr.body.contact)), regr.body.status)


def register_account(
    keystore: FileKeystore, ca: CAEndpoint, account: AccountSettings, *, new: bool = False, clock: Clock = utc_now
) -> AccountInfo:
    """Register a new account at the CA (EAB if ``account.eab``).

    A stored account makes it a ``UsageError``, unless ``new``: then the stored account
    goes to the keystore's archive once the new one is registered (``replace_account``).
    """
    ca_key = ca_id(ca.directory_url)
    with keystore.lock_keystore():
        if keystore.load_account(ca_key) is not None:
            if not new:
                raise UsageError(
                    f"an account for {ca.directory_url} is already stored",
                    "see `certman account show`; to replace it: certman account register --new",
                )
            if not account.agree_tos:
                raise UsageError(
                    f"registering a new account at {ca.directory_url} needs agreement to the CA's terms",
                    "read them, then pass --agree-tos (or agree_tos = true in certman.toml)",
                )
            replace_account(keystore, ca, account, clock=clock)
            key_pem, data = _stored(keystore, ca)
            return _info(ca, key_pem, data, "valid")
    open_session(ca.directory_url, keystore, account, ca_bundle=ca.ca_bundle, timeout=ca.timeout)
    key_pem, data = _stored(keystore, ca)
    return _info(ca, key_pem, data, "valid")


def replace_account(
    keystore: FileKeystore, ca: CAEndpoint, account: AccountSettings, *, clock: Clock = utc_now
) -> AccountRecord:
    """Register a new account with a new key, then archive the stored one and store the new.

    The caller holds the keystore lock and has settled agreement to the terms. The old
    account is archived only once the CA accepted the new one, so a refusal (``ACMEError``)
    leaves the keystore as it was.
    """
    ca_key = ca.account_id
    key = ec.generate_private_key(ec.SECP256R1())
    session = AcmeSession(ca.directory_url, jwk.JWKEC(key=key), ca_bundle=ca.ca_bundle, timeout=ca.timeout)
    record = new_account(session, account)
    archived = keystore.archive_account(ca_key, archive_stamp(clock()))
    keystore.save_account(ca_key, key_to_pem(key), record)
    log.warning(
        "registered account %s at %s; the old account is archived in %s", record.uri, ca.directory_url, archived
    )
    return record


def update_email(keystore: FileKeystore, ca: CAEndpoint, emails: tuple[str, ...]) -> AccountInfo:
    """Replace the account's contacts with ``emails`` (none: remove every contact)."""
    contact = tuple(f"mailto:{e}" for e in emails)
    with keystore.lock_keystore():
        _finish_interrupted_rollover(keystore, ca)
        key_pem, data = _stored(keystore, ca)
        regr = _session(keystore, ca).update_account(contact)
        data = structs.replace(data, contact=tuple(regr.body.contact))
        keystore.save_account(ca_id(ca.directory_url), key_pem, data)
    return _info(ca, key_pem, data, regr.body.status)


def key_change_request(session: Any, account_uri: str, new_key: Any) -> Any:
    """The inner keyChange JWS (RFC 8555 §7.3.5): signed by ``new_key`` with its jwk, no nonce,
    carrying the account URL and the current (old) public key."""
    from acme import jws
    from josepy import jwa

    alg = jwa.ES256 if isinstance(new_key, jwk.JWKEC) else jwa.RS256
    payload = json.dumps(
        {"account": account_uri, "oldKey": session.account_key.public_key().to_partial_json()}
    ).encode()
    url = feature_url(session.directory, "keyChange", "account key rollover")
    return jws.JWS.sign(payload, key=new_key, alg=alg, nonce=None, url=url)


def rollover(keystore: FileKeystore, ca: CAEndpoint, *, clock: Clock = utc_now) -> AccountInfo:
    """Replace the account key with a fresh ECDSA P-256 key, at the CA and then in the keystore."""
    ca_key = ca_id(ca.directory_url)
    with keystore.lock_keystore():
        _finish_interrupted_rollover(keystore, ca)
        _, data = _stored(keystore, ca)
        session = _session(keystore, ca)
        new_key = ec.generate_private_key(ec.SECP256R1())
        new_pem = key_to_pem(new_key)
        new_jwk = jwk.JWKEC(key=new_key)
        inner = key_change_request(session, data.uri, new_jwk)
        keystore.save_pending_account_key(ca_key, new_pem)
        try:
            session.change_account_key(inner, new_jwk)
        except Unsupported:
            # The CA refused before changing anything: the stored key stays the account's.
            keystore.save_pending_account_key(ca_key, None)
            raise
        data = structs.replace(data, key_rolled_at=clock())
        keystore.save_account(ca_key, new_pem, data)
        keystore.save_pending_account_key(ca_key, None)
    return _info(ca, new_pem, data, "valid")


def _finish_interrupted_rollover(keystore: FileKeystore, ca: CAEndpoint) -> None:
    """A rollover that died after writing ``key.pem.next``: keep whichever key the CA accepts.

    The caller holds the keystore lock.
    """
    ca_key = ca.account_id
    pending = keystore.load_pending_account_key(ca_key)
    if pending is None:
        return
    key_pem, data = _stored(keystore, ca)
    for candidate in (key_pem, pending):
        session = AcmeSession(ca.directory_url, account_jwk(candidate), ca_bundle=ca.ca_bundle, timeout=ca.timeout)
        session.use_account(data.uri)
        try:
            session.query_account()
        except ACMEError:
            continue
        if candidate is pending:
            keystore.save_account(ca_key, pending, data)
        keystore.save_pending_account_key(ca_key, None)
        return
    raise ACMEError(
        f"the CA accepts neither the account key nor the key of an interrupted rollover for {data.uri}",
        f"both are kept in {keystore.layout.account_dir(ca_key)}/ "
        f"({keystore.layout.account_key(ca_key).name}, {keystore.layout.pending_account_key(ca_key).name})",
    )


def deactivate(keystore: FileKeystore, ca: CAEndpoint, *, clock: Clock = utc_now) -> AccountInfo:
    """Deactivate the account at the CA (irreversible) and move it to the keystore's archive."""
    with keystore.lock_keystore():
        _finish_interrupted_rollover(keystore, ca)
        key_pem, data = _stored(keystore, ca)
        regr = _session(keystore, ca).deactivate_account()
        keystore.archive_account(ca_id(ca.directory_url), archive_stamp(clock()))
    return _info(ca, key_pem, data, regr.body.status)
