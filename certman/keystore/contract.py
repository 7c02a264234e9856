"""The ``Keystore`` protocol: what certman needs from any place that stores certificates.

``FileKeystore`` (a local directory) implements it, and so does ``PostgresKeystore``
(``certman.fleet.store``, a fleet's shared store). ``tests/keystore_contract.py`` holds
the behaviours below as tests that run against both.

The words MUST, SHOULD and MAY are used as in RFC 2119. Rules for every method:

- Names (certificate names, CA ids) are checked by ``names.check_cert_name`` and
  ``layout.ca_id``; an implementation MUST refuse others with ``UsageError``.
- Reading something that was never stored MUST give the documented empty value
  (``None``, ``{}``, ``[]``, ``RenewalState()``), never raise.
- A stored item that cannot be decoded MUST raise ``KeystoreError`` naming where it
  is (a path, a table and key) with a hint, never a ``TypeError`` or a traceback.
- Every write MUST be atomic: a reader, in this or another process or host, sees the
  old item or the new one, never a mix, even if the writer dies half-way.
- Every write MUST be durable when the method returns (fsync, or a committed
  transaction).
- A failure of the storage itself (disk full, permission, connection lost) MUST be a
  ``KeystoreError`` whose message names the item and never contains a secret.
- Secrets (private keys) MUST NOT appear in any error message or log line, and
  SHOULD be readable only by the owner of the store.
- Methods MAY be called from several threads at once and from several processes or
  hosts at once; what needs mutual exclusion is said per method.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

import msgspec

from ..config import CertSpec
from .pending import PendingOrder
from .records import AccountRecord, IndexEntry, RevocationMarker, VersionMeta
from .state_records import RenewalState


class StoredVersion(msgspec.Struct, frozen=True):
    """A version ``store_version`` made live: its number ("000001", ...) and its meta."""

    name: str
    version: str
    meta: VersionMeta


class Keystore(Protocol):
    """Accounts, certificate specs, immutable versions, renewal state and an index.

    Locks. ``lock_cert``, ``lock_keystore`` and ``lock_renewal`` are exclusive across
    every process (and, for a shared store, every host) using the same store. Each
    MUST wait at most the store's lock timeout and then raise ``KeystoreLocked``
    (exit 3). A lock held by a process that died MUST be released without operator
    action (the kernel drops an flock; a lease expires). They are not re-entrant.
    Order: ``lock_renewal``, then ``lock_cert``, then ``lock_keystore``; never the reverse.
    """

    @property
    def location(self) -> str:
        """Where the store is, for messages: a path, or a URL without credentials."""
        ...

    def lock_cert(self, name: str) -> AbstractContextManager[None]:
        """Hold certificate ``name``: one issuance, revocation or removal of it at a time."""
        ...

    def lock_keystore(self) -> AbstractContextManager[None]:
        """Hold the store-wide lock: account registration and rollover, index rewrites."""
        ...

    def lock_renewal(self) -> AbstractContextManager[None]:
        """Hold the renewal run: one ``renew`` at a time decides and issues."""
        ...

    # -- accounts ------------------------------------------------------------------------

    def load_account(self, ca: str) -> tuple[bytes, AccountRecord] | None:
        """The account key (PEM) and record at CA ``ca``, or None if there is none.

        MUST return both or neither: a half-saved account is not an account.
        """
        ...

    def save_account(self, ca: str, key_pem: bytes, record: AccountRecord) -> None:
        """Store (or replace) the account at ``ca``. The caller holds ``lock_keystore``.

        The key MUST be stored no less securely than a certificate key.
        """
        ...

    def account_cas(self) -> list[str]:
        """The CA ids that have a stored account, sorted; ``[]`` when none."""
        ...

    def save_pending_account_key(self, ca: str, key_pem: bytes | None) -> None:
        """Keep a rollover's new key before the CA switches to it; None forgets it (idempotent).

        MUST be durable before the CA is asked to change keys, so that a crash
        leaves the key the CA may now expect recoverable.
        """
        ...

    def load_pending_account_key(self, ca: str) -> bytes | None:
        """The key ``save_pending_account_key`` kept, or None."""
        ...

    def archive_account(self, ca: str, stamp: str) -> Path | str:
        """Take the account at ``ca`` out of use, keeping it under ``stamp``; where it went.

        MUST NOT delete it. ``load_account(ca)`` then returns None. ``KeystoreError``
        if an archive under the same stamp exists.
        """
        ...

    # -- certificates --------------------------------------------------------------------

    def read_index(self) -> Mapping[str, IndexEntry]:
        """Per certificate name, the facts of its live version; ``{}`` for a new store.

        MUST be cheap for 10,000 certificates (no certificate is parsed). A bad entry
        raises ``KeystoreError`` with a hint that names the entry.
        """
        ...

    def names(self) -> list[str]:
        """The names in the index, sorted."""
        ...

    def has(self, name: str) -> bool:
        """Whether ``name`` has a live version."""
        ...

    def read_spec(self, name: str) -> CertSpec:
        """How ``name`` is (re)issued. ``UsageError`` (exit 2) if there is no such certificate,
        ``ConfigError`` if the stored spec is invalid."""
        ...

    def write_spec(self, spec: CertSpec) -> None:
        """Replace the spec of ``spec.name``, without its inline secrets (``CertSpec.storable``).

        The caller holds ``lock_cert(spec.name)``. MUST make ``read_index()[name].renew_before_days``
        the spec's (renewal decides from the index alone).
        """
        ...

    def read_state(self, name: str) -> RenewalState:
        """The renewal state of ``name``; ``RenewalState()`` if renewal never wrote one."""
        ...

    def read_states(self, names: list[str]) -> dict[str, RenewalState]:
        """``read_state`` for each of ``names``; SHOULD be one pass (a renew run reads 10,000).

        Raises for the first unreadable state; callers then read one by one.
        """
        ...

    def write_state(self, name: str, state: RenewalState) -> None:
        """Replace the renewal state of ``name``. Last writer wins; renewal writes it only
        while it holds ``lock_renewal`` or ``lock_cert(name)``."""
        ...

    def mark_states(self, states: Mapping[str, RenewalState]) -> None:
        """Copy into the index entries of these names what listing shows of their states:
        ``IndexEntry.backoff_until`` and ``undeployed_serial``. SHOULD be one write for the
        batch; names without an entry are left out."""
        ...

    def read_pending_order(self, name: str) -> PendingOrder | None:
        """The unfinished order of ``name`` a previous run left to continue, or None."""
        ...

    def write_pending_order(self, name: str, order: PendingOrder) -> None:
        """Keep ``order`` (with its key) until ``clear_pending_order``; caller holds ``lock_cert(name)``."""
        ...

    def clear_pending_order(self, name: str) -> None:
        """Forget the unfinished order of ``name``; idempotent."""
        ...

    def read_revocation(self, name: str, live_serial: str | None = None) -> RevocationMarker | None:
        """The revocation marker of ``name``, only while it names the live serial, else None.

        ``live_serial`` saves an index lookup when the caller has it. A new version
        lifts the marker by changing the serial; nothing has to delete it.
        """
        ...

    def mark_revoked(self, name: str, marker: RevocationMarker) -> None:
        """Record that the live certificate of ``name`` was revoked; the index entry then
        carries ``revoked_serial``. The caller holds ``lock_cert(name)``."""
        ...

    def versions(self, name: str) -> list[str]:
        """The stored version numbers of ``name``, oldest first; ``[]`` when none."""
        ...

    def live_version(self, name: str) -> str | None:
        """The version number that is live for ``name``, or None."""
        ...

    def read_meta(self, name: str, version: str) -> VersionMeta | None:
        """The meta of one stored version, or None if that version has none."""
        ...

    def store_version(
        self, spec: CertSpec, key_pem: bytes, leaf_pem: bytes, chain_pem: bytes, meta: VersionMeta
    ) -> StoredVersion:
        """Store a complete new version, make it live, and record its spec and index entry.

        The caller holds ``lock_cert(spec.name)``. MUST be atomic as a whole: until it
        returns, readers see the previous live version (its key, certificate and index
        entry together); after, the new one. A failure leaves the previous one live.
        Versions are numbered from 000001 and never reused.
        """
        ...

    def archive_cert(self, name: str, stamp: str) -> Path | str:
        """Take ``name`` out of service under ``stamp``; where it went. MUST NOT delete.

        The caller holds ``lock_cert(name)``. ``UsageError`` for an unknown name.
        Afterwards ``has(name)`` is false and the index has no entry for it.
        """
        ...
