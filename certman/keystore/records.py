"""The records a keystore stores, each with one ``to_json`` and one ``from_json``.

    VersionMeta       versions/<n>/meta.json: what one issued certificate is
    IndexEntry        index.json, per name: the live version's meta plus what list and renew need
    RenewalDigest     index.json, per name: what a no-op renew needs of state.json
    RenewalState      state.json (``state_records``): failures, backoff, ARI window, deploy
    RevocationMarker  revoked.json: which serial was revoked, when and why
    AccountRecord     accounts/<ca>/account.json: the account URL at one CA

``from_json`` validates: a record renewal or listing could not use is a ``KeystoreError``
(exit 3) naming the file, never a TypeError mid-batch. Times are aware UTC datetimes here,
``YYYY-MM-DDTHH:MM:SSZ`` on disk (``keystore.times``); every file certman 0.1 wrote reads
back unchanged (tests/golden/keystore-v0.1).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from ..errors import KeystoreError
from .times import decode_time, encode_time

if TYPE_CHECKING:
    from ..keys import CertFacts

# Records are msgspec Structs: frozen like dataclasses, but built and decoded in C, which a
# no-op renew over 10,000 certificates feels. keystore.decoders tries the strict typed
# decoder first; what it refuses goes through ``from_json`` (see there).
# A stored time for the strict decoder: aware (a naive one goes through from_json, as UTC).
UTCTime = Annotated[datetime.datetime, msgspec.Meta(tz=True)]

_INDEX_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_time(value: Any) -> datetime.datetime | None:
    return None if value is None else decode_time(value)


class VersionMeta(msgspec.Struct, frozen=True):
    """One issued certificate (``meta.json``); the facts come from the certificate itself."""

    serial: str | None
    not_before: UTCTime
    not_after: UTCTime
    issuer: str | None = None
    # RFC 9773 §4.1 CertID, when the certificate names its issuer's key.
    ari_cert_id: str | None = None
    issued_at: UTCTime | None = None
    order_url: str | None = None
    renew_before_days: float | None = None
    # Set when imported (certman import certbot): when, and from which file.
    imported_at: UTCTime | None = None
    imported_from: str | None = None
    # Set by the keystore when it stores the version ("000001", ...).
    version: str | None = None

    @classmethod
    def of(cls, facts: CertFacts, *, issued_at: datetime.datetime, **more: Any) -> VersionMeta:
        """The meta of a certificate with ``facts``; ``more`` sets the optional fields."""
        return cls(
            serial=facts.serial,
            not_before=facts.not_before,
            not_after=facts.not_after,
            issuer=facts.issuer,
            ari_cert_id=facts.ari_cert_id,
            issued_at=issued_at,
            **more,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "serial": self.serial,
            "not_before": encode_time(self.not_before),
            "not_after": encode_time(self.not_after),
            "issuer": self.issuer,
            "ari_cert_id": self.ari_cert_id,
            "issued_at": encode_time(self.issued_at),
        }
        optional = {
            "order_url": self.order_url,
            "renew_before_days": self.renew_before_days,
            "imported_at": encode_time(self.imported_at),
            "imported_from": self.imported_from,
            "version": self.version,
        }
        data.update((k, v) for k, v in optional.items() if v is not None)
        return dict(sorted(data.items()))

    @classmethod
    def from_json(cls, raw: Any, path: object) -> VersionMeta:
        """``raw`` as read from ``path`` (named in the KeystoreError a malformed file raises)."""
        if not isinstance(raw, dict):
            raise KeystoreError(f"{path} is malformed: not a JSON object")
        try:
            return cls(**_meta_fields(raw, decode_time(raw["not_before"]), decode_time(raw["not_after"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreError(f"{path} is malformed: {exc!r}") from None


def _meta_fields(raw: Mapping[str, Any], not_before: datetime.datetime, not_after: datetime.datetime) -> dict[str, Any]:
    """The meta fields of ``raw`` but its validity times, which the caller decoded (and checked) already."""
    before = raw.get("renew_before_days")
    return {
        "serial": opt_str(raw.get("serial")),
        "not_before": not_before,
        "not_after": not_after,
        "issuer": opt_str(raw.get("issuer")),
        "ari_cert_id": opt_str(raw.get("ari_cert_id")),
        "issued_at": _opt_time(raw.get("issued_at")),
        "order_url": opt_str(raw.get("order_url")),
        "renew_before_days": None if before is None else float(before),
        "imported_at": _opt_time(raw.get("imported_at")),
        "imported_from": opt_str(raw.get("imported_from")),
        "version": opt_str(raw.get("version")),
    }


class RenewalDigest(msgspec.Struct, frozen=True, gc=False):
    """What a renew run needs of ``state.json`` to skip a certificate with no news, kept in
    its index entry so that a no-op run over 100,000 certificates opens no state file.

    Valid for the live ``serial`` only. Between ``quiet_from`` (the end of a backoff; None:
    no backoff) and ``quiet_until`` (its renewal time, or the next ARI check if sooner) the
    run skips it, "not due until ``due``", reporting the state's success and failure times.
    Any other moment, or no digest, and the run reads state.json. Set by ``renew`` from a
    state it read under the keystore lock; dropped (under the same lock) by every other
    write of state.json, and by every rewrite of the entry itself (a new version, a repair,
    a changed renew window).
    """

    serial: str | None
    quiet_until: UTCTime
    due: UTCTime
    quiet_from: UTCTime | None = None
    last_success: UTCTime | None = None
    last_failure: UTCTime | None = None
    consecutive_failures: Annotated[int, msgspec.Meta(ge=0)] = 0

    def quiet(self, serial: str | None, now: datetime.datetime) -> bool:
        """Whether a run at ``now`` skips the certificate whose live serial is ``serial``, with no news."""
        return self.serial == serial and now < self.quiet_until and (self.quiet_from is None or self.quiet_from <= now)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "serial": self.serial,
            "quiet_until": encode_time(self.quiet_until),
            "due": encode_time(self.due),
            "consecutive_failures": self.consecutive_failures,
        }
        times = {"quiet_from": self.quiet_from, "last_success": self.last_success, "last_failure": self.last_failure}
        data.update((k, encode_time(v)) for k, v in times.items() if v is not None)
        return data

    @classmethod
    def from_json(cls, raw: Any) -> RenewalDigest | None:
        """The digest in ``raw``; None for one that does not read back (the run then reads state.json)."""
        try:
            failures = raw.get("consecutive_failures", 0)
            if not isinstance(failures, int) or isinstance(failures, bool) or failures < 0:
                return None
            return cls(
                serial=opt_str(raw.get("serial")),
                quiet_until=decode_time(raw["quiet_until"]),
                due=decode_time(raw["due"]),
                quiet_from=_opt_time(raw.get("quiet_from")),
                last_success=_opt_time(raw.get("last_success")),
                last_failure=_opt_time(raw.get("last_failure")),
                consecutive_failures=failures,
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            return None


class IndexEntry(VersionMeta, frozen=True):
    """Per certificate name in ``index.json``: its live version's meta, and the rest that
    ``list``, ``renew`` and ``explain`` need without opening a PEM file."""

    identifiers: tuple[str, ...] = ()
    key_type: str | None = None
    # The CA that issued the live version (after a fallback, not the spec's first CA).
    server: str | None = None
    # The serial a revocation marker names; renewal opens revoked.json only for these.
    revoked_serial: str | None = None
    # Copied from state.json by ``mark_states`` so that ``list`` opens no state file:
    # until when failures hold renewal back, and the serial whose reload is pending.
    backoff_until: UTCTime | None = None
    undeployed_serial: str | None = None
    # When the CA's ARI window for the live serial says to renew (state.json's choice),
    # so that ``list`` decides due as renew does without the state file.
    ari_renew_at: UTCTime | None = None
    # Format 2: what a no-op renew needs of state.json (absent: the run reads state.json).
    renewal: RenewalDigest | None = None

    @property
    def revoked(self) -> bool:
        """Whether the index says the live serial has a revocation marker."""
        return self.revoked_serial is not None and self.revoked_serial == self.serial

    @property
    def undeployed(self) -> bool:
        """Whether the index says the live serial is stored but its reload has not succeeded."""
        return self.undeployed_serial is not None and self.undeployed_serial == self.serial

    def to_json(self) -> dict[str, Any]:
        data = VersionMeta.to_json(self)
        data.update(identifiers=list(self.identifiers), key_type=self.key_type, server=self.server)
        if self.revoked_serial is not None:
            data["revoked_serial"] = self.revoked_serial
        if self.backoff_until is not None:
            data["backoff_until"] = encode_time(self.backoff_until)
        if self.undeployed_serial is not None:
            data["undeployed_serial"] = self.undeployed_serial
        if self.ari_renew_at is not None:
            data["ari_renew_at"] = encode_time(self.ari_renew_at)
        if self.renewal is not None:
            data["renewal"] = self.renewal.to_json()
        return dict(sorted(data.items()))

    @classmethod
    def from_json(cls, raw: Any, path: object, name: str = "") -> IndexEntry:
        """The entry of ``name`` in the index at ``path``; a KeystoreError says how to fix a bad one."""
        if not isinstance(raw, dict):
            raise KeystoreError(f"index {path}: the entry of {name!r} is not an object", _index_hint(path, name))
        validity = []
        for key in ("not_before", "not_after"):
            value = raw.get(key)
            # The one format certman writes; fromisoformat then rejects impossible dates.
            try:
                if not isinstance(value, str) or not _INDEX_TIME.fullmatch(value):
                    raise ValueError(value)
                validity.append(decode_time(value))
            except ValueError:
                shown = "missing" if value is None else f"{value!r}, not a YYYY-MM-DDTHH:MM:SSZ time"
                raise KeystoreError(f"index {path}: {key} of {name!r} is {shown}", _index_hint(path, name)) from None
        identifiers = raw.get("identifiers") or ()
        try:
            if not isinstance(identifiers, (list, tuple)):  # noqa: UP038 (a tuple is faster, per entry of 10,000)
                raise ValueError(f"identifiers = {identifiers!r} is not a list")
            return cls(
                **_meta_fields(raw, *validity),
                identifiers=tuple(map(str, identifiers)),
                key_type=opt_str(raw.get("key_type")),
                server=opt_str(raw.get("server")),
                revoked_serial=opt_str(raw.get("revoked_serial")),
                backoff_until=_opt_time(raw.get("backoff_until")),
                undeployed_serial=opt_str(raw.get("undeployed_serial")),
                ari_renew_at=_opt_time(raw.get("ari_renew_at")),
                renewal=RenewalDigest.from_json(raw["renewal"]) if raw.get("renewal") else None,
            )
        except (TypeError, ValueError) as exc:
            raise KeystoreError(
                f"index {path}: the entry of {name!r} is malformed: {exc}", _index_hint(path, name)
            ) from None


def _index_hint(path: object, name: str) -> str:
    return (
        f"delete the {name!r} entry from {path}, then `certman issue --name {name} NAME...` "
        "rewrites it; the certificate files are intact"
    )


class RevocationMarker(msgspec.Struct, frozen=True):
    """``revoked.json``: renewal leaves the certificate alone while the live serial is ``serial``."""

    serial: str
    reason: str
    revoked_at: UTCTime | None
    # "account" or "certificate key": who signed the request (absent in early markers).
    signed_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {"serial": self.serial, "reason": self.reason, "revoked_at": encode_time(self.revoked_at)}
        if self.signed_by is not None:
            data["signed_by"] = self.signed_by
        return data

    @classmethod
    def from_json(cls, raw: Any, path: object) -> RevocationMarker:
        try:
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            return cls(
                serial=str(raw["serial"]),
                reason=str(raw.get("reason", "unspecified")),
                revoked_at=_opt_time(raw.get("revoked_at")),
                signed_by=opt_str(raw.get("signed_by")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreError(f"revocation marker {path} is unreadable: {exc!r}") from None


class AccountRecord(msgspec.Struct, frozen=True):
    """``account.json``: the account at one CA (its key is stored beside it, never in here)."""

    uri: str
    directory: str | None = None
    contact: tuple[str, ...] = ()
    created_at: UTCTime | None = None
    key_rolled_at: UTCTime | None = None
    # Set when imported from certbot: the account directory it came from.
    imported_from: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "uri": self.uri,
            "directory": self.directory,
            "contact": list(self.contact),
            "created_at": encode_time(self.created_at),
        }
        if self.key_rolled_at is not None:
            data["key_rolled_at"] = encode_time(self.key_rolled_at)
        if self.imported_from is not None:
            data["imported_from"] = self.imported_from
        return data

    @classmethod
    def from_json(cls, raw: Any, path: object) -> AccountRecord:
        try:
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            return cls(
                uri=str(raw["uri"]),
                directory=opt_str(raw.get("directory")),
                contact=tuple(str(c) for c in raw.get("contact") or ()),
                created_at=_opt_time(raw.get("created_at")),
                key_rolled_at=_opt_time(raw.get("key_rolled_at")),
                imported_from=opt_str(raw.get("imported_from")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreError(f"account in {path} is unreadable: {exc!r}") from None
