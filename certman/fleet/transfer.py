"""``certman store import``: upload a local keystore (accounts and live certificates) to the store.

How a single host becomes the first host of a fleet. Idempotent: what the store
already has (an account at the same CA, a certificate of the same name) is kept and
reported, never replaced, so running it from a second host cannot roll the fleet
back. Each certificate goes in as the store's next version, with its renewal state,
under the store's certificate lock; this host is recorded as serving it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..keystore import FileKeystore
from ..keystore.files import storage_error
from ..keystore.layout import CERT_FILE, CHAIN_FILE, KEY_FILE
from .protocol import FleetProtocol
from .store import PostgresKeystore


@dataclass(frozen=True)
class ImportResult:
    """What ``import_keystore`` uploaded (certificates as name and store version) and what it kept."""

    accounts: list[str] = field(default_factory=list)
    accounts_kept: list[str] = field(default_factory=list)
    certificates: list[tuple[str, str]] = field(default_factory=list)
    certificates_kept: list[str] = field(default_factory=list)


def import_keystore(local: FileKeystore, store: PostgresKeystore) -> ImportResult:
    """Upload every account and every live certificate of ``local`` the store lacks.

    ``KeystoreError`` for an unreadable local file (named); ``StoreUnavailable`` (exit 8)
    if the store goes away, with what was uploaded until then committed.
    """
    store.check()
    result = ImportResult()
    for ca in local.account_cas():
        account = local.load_account(ca)
        if account is None:
            continue
        with store.lock_keystore():
            if store.load_account(ca) is not None:
                result.accounts_kept.append(ca)
                continue
            store.save_account(ca, *account)
        result.accounts.append(ca)
    protocol = FleetProtocol(store)
    for name in local.names():
        version = local.live_version(name)
        meta = local.read_meta(name, version) if version else None
        if version is None or meta is None:
            continue
        directory = local.layout.versions(name) / version
        try:
            key_pem, leaf_pem, chain_pem = ((directory / f).read_bytes() for f in (KEY_FILE, CERT_FILE, CHAIN_FILE))
        except OSError as exc:
            raise storage_error(exc, directory, "reading") from exc
        with store.lock_cert(name):
            if store.has(name):
                result.certificates_kept.append(name)
                continue
            stored = store.store_version(local.read_spec(name), key_pem, leaf_pem, chain_pem, meta)
            store.write_state(name, local.read_state(name))
        protocol.record_install(name, stored.version)
        result.certificates.append((name, stored.version))
    return result
