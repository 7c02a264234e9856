"""What happens to stored certificates after issuance: list them, show, revoke or remove one.

A revoked certificate gets a marker (``certs/<name>/revoked.json``, read with
``FileKeystore.read_revocation``) so that renewal leaves it alone until someone
issues it again on purpose; ``issue`` clears the marker. Removing never deletes:
the certificate's directory moves to ``<keystore>/archive/<name>-<stamp>/``.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Settings
from .errors import CertmanError, KeystoreError, UsageError
from .keystore import FileKeystore, IndexEntry, RenewalState, RevocationMarker, VersionMeta
from .keystore.times import Clock, archive_stamp, encode_time, utc_now

log = logging.getLogger(__name__)

# RFC 5280 §5.3.1 CRLReason codes that RFC 8555 §7.6 lets a subscriber ask for.
REVOCATION_REASONS = {
    "unspecified": 0,
    "keyCompromise": 1,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
}


@dataclass(frozen=True)
class VersionInfo:
    version: str
    is_live: bool
    meta: VersionMeta | None


@dataclass(frozen=True)
class CertificateReport:
    """Everything the keystore knows about one certificate, uninterpreted."""

    name: str
    identifiers: tuple[str, ...]
    live_version: str | None
    live_path: Path
    versions: tuple[VersionInfo, ...]
    spec: Mapping[str, Any]
    state: RenewalState
    revocation: RevocationMarker | None
    # What the next `certman renew` does: action, at (UTC), reason (see certman.renewal.rules).
    next_renewal: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "identifiers": list(self.identifiers),
            "live_version": self.live_version,
            "live": str(self.live_path),
            "versions": [
                {"version": v.version, "live": v.is_live, **(v.meta.to_json() if v.meta else {})} for v in self.versions
            ],
            "spec": dict(self.spec),
            "state": self.state.to_json(),
            "revoked": self.revocation.to_json() if self.revocation else None,
            "next_renewal": dict(self.next_renewal) if self.next_renewal else None,
        }


@dataclass(frozen=True)
class RevokeResult:
    name: str
    serial: str
    reason: str
    revoked_at: str
    # "account" or "certificate key": who signed the request.
    signed_by: str


@dataclass(frozen=True)
class RemoveResult:
    name: str
    archived_to: Path


def list_certificates(keystore: FileKeystore) -> Mapping[str, IndexEntry]:
    """What `certman list` shows: the ``index.json`` entry of every certificate, by name.

    A keystore left by a run killed mid-store is repaired first (``KeystoreError`` if it
    cannot be), so the listing matches ``live/``.
    """
    if keystore.crashed():
        # A run killed between moving live/ and the index leaves the index stale; the
        # listing comes from the index, so repair it first.
        keystore.repair_index()
    return keystore.read_index()


def list_decisions(
    keystore: FileKeystore, index: Mapping[str, IndexEntry], settings: Settings | None, now: datetime.datetime
) -> dict[str, Any]:
    """What the next `certman renew` does with each certificate of ``index`` (a
    ``renewal.rules.Decision`` by name), decided by ``renewal.plan.next_step`` as renew and
    explain decide, from the index's marks instead of each ``state.json``
    (``keystore.index.state_of_marks``). Only a certificate declared in certman.toml has
    its spec read, and only a revoked one its revocation marker."""
    from .keystore.index import state_of_marks
    from .renewal.declared import declared_specs
    from .renewal.plan import next_step

    try:
        declared = declared_specs(settings, keystore) if settings is not None else {}
    except CertmanError:
        declared = {}  # an invalid certman.toml is renew's and doctor's to report, not list's
    return {
        name: next_step(keystore, name, entry, state_of_marks(entry), declared.get(name), now)
        for name, entry in index.items()
    }


def describe(
    keystore: FileKeystore, name: str, *, clock: Clock = utc_now, settings: Settings | None = None
) -> CertificateReport:
    """The identifiers, versions (with their meta.json), spec, state, revocation marker and next renewal.

    With ``settings``, the next renewal applies a ``[[certificate]]`` declaration of ``name``
    as `certman renew` does, and says which changed fields decide (``next_renewal["declaration"]``).
    ``UsageError`` for an unknown name; ``KeystoreError`` if a stored record is unreadable.
    """
    spec = keystore.read_spec(name)
    live = keystore.live_version(name)
    versions = tuple(VersionInfo(v, v == live, keystore.read_meta(name, v)) for v in keystore.versions(name))
    state = keystore.read_state(name)
    revocation = keystore.read_revocation(name)
    entry = keystore.read_index().get(name)
    return CertificateReport(
        name=name,
        identifiers=tuple(i.value for i in spec.identifiers),
        live_version=live,
        live_path=keystore.live(name).directory,
        versions=versions,
        spec=spec.to_dict(),
        state=state,
        revocation=revocation,
        next_renewal=_next_renewal(keystore, name, entry, state, clock(), settings) if entry else None,
    )


def _next_renewal(
    keystore: FileKeystore,
    name: str,
    entry: IndexEntry,
    state: RenewalState,
    now: datetime.datetime,
    settings: Settings | None,
) -> dict[str, Any]:
    """The same decision `certman renew` would take now, with the rule behind it."""
    from .renewal import rules as renewal
    from .renewal.declared import declared_specs
    from .renewal.plan import declaration_diff, next_step

    try:
        declared = declared_specs(settings, keystore).get(name) if settings is not None else None
    except CertmanError:
        declared = None  # an invalid certman.toml is renew's and doctor's to report, not show's
    decision = next_step(keystore, name, entry, state, declared, now)
    reason = decision.reason
    if decision.action == renewal.SKIP and reason.startswith("not due"):
        reason = renewal.renew_at(name, entry, state)[1]
    diff = declaration_diff(keystore, declared) if declared is not None else None
    changed = diff.to_dict() if diff is not None and diff.changes else None
    return {"action": decision.action, "at": encode_time(decision.renew_at), "reason": reason, "declaration": changed}


def revoke(
    keystore: FileKeystore, name: str, *, reason: str = "unspecified", timeout: float = 90.0, clock: Clock = utc_now
) -> RevokeResult:
    """Revoke the live certificate of ``name`` at its CA and mark it so renewal skips it.

    RFC 8555 §7.6 accepts a request signed by the account or by the certificate's
    key. A signature by the certificate key demonstrates the key's compromise, so
    Let's Encrypt then records keyCompromise (whatever the reason sent) and blocks
    the key: certman signs with it for ``keyCompromise``, and otherwise with the
    stored account, falling back to the certificate key only when there is none
    (a keystore copied from elsewhere).
    """
    from .ca.accounts import account_jwk
    from .ca.session import AcmeSession
    from .keystore import ca_id

    if reason not in REVOCATION_REASONS:
        raise UsageError(f"unknown revocation reason {reason!r}", f"choose one of: {', '.join(REVOCATION_REASONS)}")
    spec = keystore.read_spec(name)
    with keystore.lock_cert(name):
        live = keystore.live(name)
        if keystore.live_version(name) is None:
            raise UsageError(f"certificate {name} has no live version to revoke")
        already = keystore.read_revocation(name)
        cert_der, serial = _leaf_der_and_serial(live.cert)
        if already is not None and already.serial == serial:
            raise UsageError(
                f"certificate {name} (serial {serial}) is already revoked",
                "`certman issue` it again to get a new certificate",
            )
        directory_url, ca_bundle = _issuing_ca(keystore, spec)
        stored = keystore.load_account(ca_id(directory_url))
        if stored is not None and reason != "keyCompromise":
            signed_by = "account"
            key_file = keystore.layout.account_key(ca_id(directory_url))
            session = AcmeSession(directory_url, account_jwk(stored[0], key_file), ca_bundle=ca_bundle, timeout=timeout)
            session.use_account(stored[1].uri)
        else:
            signed_by = "certificate key"
            if reason != "keyCompromise":
                log.warning(
                    "no account for %s in the keystore: signing with the certificate key, which a CA "
                    "may record as keyCompromise",
                    directory_url,
                )
            session = AcmeSession(
                directory_url, account_jwk(_version_key(live.privkey)), ca_bundle=ca_bundle, timeout=timeout
            )
        session.revoke(cert_der, REVOCATION_REASONS[reason])
        revoked_at = clock()
        keystore.mark_revoked(name, RevocationMarker(serial, reason, revoked_at, signed_by))
    return RevokeResult(name, serial, reason, encode_time(revoked_at), signed_by)


def _issuing_ca(keystore: FileKeystore, spec: Any) -> tuple[str, str | None]:
    """The CA that issued the live version: the index records it, which differs from the
    spec's first CA after a fallback (see certman.issuance.fallback)."""
    from .config import resolve_server
    from .issuance.fallback import endpoints

    entry = keystore.read_index().get(spec.name)
    issued_by = (entry.server if entry is not None else None) or spec.server
    for ca in endpoints(spec):
        if ca["server"] == issued_by:
            return resolve_server(ca["server"]), ca["ca_bundle"]
    return resolve_server(issued_by), spec.ca_bundle


def _leaf_der_and_serial(path: Path) -> tuple[bytes, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"{path} is not a readable certificate: {exc}") from exc
    return cert.public_bytes(Encoding.DER), format(cert.serial_number, "x")


def _version_key(path: Path) -> bytes:
    from .keystore.files import storage_error
    from .keystore.keyfiles import check_private_key

    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise storage_error(exc, path, "reading") from exc
    check_private_key(
        pem, path, "restore it from a backup; a --reason other than keyCompromise is signed by the account instead"
    )
    return pem


def remove(keystore: FileKeystore, name: str, *, clock: Clock = utc_now) -> RemoveResult:
    """Take ``name`` out of the keystore into its archive; nothing is deleted."""
    with keystore.lock_cert(name):
        target = keystore.archive_cert(name, archive_stamp(clock()))
    return RemoveResult(name, target)
