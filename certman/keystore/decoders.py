"""The fast way in for the two files a no-op renew reads per certificate.

``index.json`` and every ``state.json`` are decoded by msgspec's strict typed decoder
straight into records. Anything it refuses, or any value it would read differently,
returns None here, and the caller takes the slow way: ``json.loads`` and the records'
``from_json``, which accept every form certman 0.1 wrote and name what is wrong in a
``KeystoreError``. So this module changes how fast a file is read, never what is
accepted or what a record holds.
"""

from __future__ import annotations

import datetime

import msgspec

from .records import IndexEntry, RenewalDigest, UTCTime
from .state_records import AriState, DeployState, RenewalState

_UTC = datetime.UTC
_NO_ARI = AriState()
_NO_DEPLOY = DeployState()


class _IndexFile(msgspec.Struct):
    certificates: dict[str, IndexEntry] = msgspec.field(default_factory=dict)


_INDEX = msgspec.json.Decoder(_IndexFile)
_STATE = msgspec.json.Decoder(RenewalState)


def _utc(*moments: datetime.datetime | None) -> bool:
    # from_json converts other offsets to UTC; records only ever hold UTC.
    return all(m is None or m.tzinfo is _UTC for m in moments)


def decode_index(data: bytes) -> dict[str, IndexEntry] | None:
    """Every entry of ``index.json`` as stored in ``data``, or None: take the slow way."""
    try:
        certs = _INDEX.decode(data).certificates
    except msgspec.MsgspecError:
        return None
    utc = _UTC
    for entry in certs.values():
        before, after = entry.not_before, entry.not_after
        # The index's validity times are whole seconds (YYYY-MM-DDTHH:MM:SSZ). Spelled out,
        # not _utc(): this loop runs per entry of 100,000.
        if before.microsecond or after.microsecond or before.tzinfo is not utc or after.tzinfo is not utc:
            return None
        if not _utc(entry.issued_at, entry.imported_at, entry.backoff_until, entry.ari_renew_at):
            return None
    return certs


def decode_state(data: bytes) -> RenewalState | None:
    """The ``state.json`` stored in ``data``, or None: take the slow way."""
    try:
        state = _STATE.decode(data)
    except msgspec.MsgspecError:
        return None
    times = (state.last_attempt, state.last_success, state.last_failure, state.next_attempt, state.retry_after)
    if not _utc(*times):
        return None
    ari, deploy = state.ari, state.deploy
    if ari is not None:
        # from_json reads an empty object as no window at all, not as an empty one.
        if ari == _NO_ARI or not _utc(ari.window_start, ari.window_end, ari.chosen, ari.fetched_at, ari.next_check):
            return None
    if deploy is not None and (deploy == _NO_DEPLOY or not _utc(deploy.attempted_at)):
        return None
    return state


class QuietView(msgspec.Struct, frozen=True, gc=False):
    """What a no-op renew reads of an index entry (``IndexEntry``'s fields of the same names)."""

    serial: str | None
    not_after: UTCTime
    revoked_serial: str | None = None
    renewal: RenewalDigest | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_serial is not None and self.revoked_serial == self.serial

    @property
    def stored_as_written(self) -> bool:
        """Whether the entry's expiry is in the one form certman writes (else only the
        full read, which names what is wrong, may take it)."""
        return self.not_after.tzinfo is _UTC and not self.not_after.microsecond


class _QuietFile(msgspec.Struct):
    certificates: dict[str, QuietView] = msgspec.field(default_factory=dict)


_QUIET = msgspec.json.Decoder(_QuietFile)


def decode_quiet(data: bytes) -> dict[str, QuietView] | None:
    """The ``QuietView`` of every entry of ``index.json``, or None: read the whole entries.

    Decodes only four fields of each entry, so that a no-op renew over 100,000
    certificates builds no full entry (time and memory)."""
    try:
        return _QUIET.decode(data).certificates
    except msgspec.MsgspecError:
        return None
