"""The renewal state of one certificate, ``state.json``, with one ``to_json`` and one ``from_json``.

    RenewalState  attempts, failures and backoff, Retry-After, the ARI window, the deploy
    AriState      the CA's renewal window (RFC 9773), as last fetched
    DeployState   whether the reloaders have taken the live serial

As for every record (``records``), ``from_json`` validates: a state renewal could not use
is a ``KeystoreError`` naming the file; every state certman 0.1 wrote reads back unchanged.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from ..errors import KeystoreError
from .records import UTCTime, opt_str
from .times import decode_time, encode_time

STATE_FORMAT = 1
STATE_HINT = "fix or remove it: it holds renewal bookkeeping (retries, ARI, pending deploys), not the certificate"
_STATE_TIMES = ("last_attempt", "last_success", "last_failure", "next_attempt", "retry_after")


class AriState(msgspec.Struct, frozen=True):
    """The CA's renewal window for one certificate (RFC 9773), as last fetched.

    Three shapes: a window (``window_start`` .. ``window_end``, ``chosen`` inside it);
    ``unsupported`` (the CA has no renewalInfo); or the last window kept with the
    ``last_error`` of a failed fetch. ``next_check`` says when to ask again.
    """

    cert_id: str | None = None
    window_start: UTCTime | None = None
    window_end: UTCTime | None = None
    explanation_url: str | None = None
    chosen: UTCTime | None = None
    fetched_at: UTCTime | None = None
    next_check: UTCTime | None = None
    unsupported: bool = False
    last_error: str | None = None

    def usable_for(self, cert_id: str | None, not_before: datetime.datetime) -> bool:
        """Whether the window applies to the certificate with ``cert_id`` issued at
        ``not_before``: only the one it was fetched for, and only if it ends after that
        certificate was issued (a stale window must never re-issue a new one)."""
        if self.window_start is None or self.window_end is None or self.cert_id != cert_id:
            return False
        return self.window_end > not_before

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"cert_id": self.cert_id}
        if self.window_start is not None or self.window_end is not None:
            data.update(
                window_start=encode_time(self.window_start),
                window_end=encode_time(self.window_end),
                explanation_url=self.explanation_url,
                chosen=encode_time(self.chosen),
                fetched_at=encode_time(self.fetched_at),
            )
        if self.unsupported:
            data["unsupported"] = True
        data["next_check"] = encode_time(self.next_check)
        if self.last_error is not None:
            data["last_error"] = self.last_error
        return data


class DeployState(msgspec.Struct, frozen=True):
    """Whether the reloaders have taken the certificate with ``serial`` (``pending``: not yet)."""

    pending: bool = False
    serial: str | None = None
    error: str | None = None
    attempted_at: UTCTime | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"pending": self.pending, "serial": self.serial, "error": self.error}
        if self.attempted_at is not None:
            data["attempted_at"] = encode_time(self.attempted_at)
        return data


class RenewalState(msgspec.Struct, frozen=True):
    """``state.json``: the renewal bookkeeping of one certificate (docs/renewal.md, "State").

    ``RenewalState()`` is a certificate renewal never touched; it encodes as ``{}``.
    """

    last_attempt: UTCTime | None = None
    last_success: UTCTime | None = None
    last_failure: UTCTime | None = None
    last_error: str | None = None
    consecutive_failures: Annotated[int, msgspec.Meta(ge=0)] = 0
    next_attempt: UTCTime | None = None
    # The CA's Retry-After (a rate limit, a 503): never ask before it.
    retry_after: UTCTime | None = None
    ari: AriState | None = None
    deploy: DeployState | None = None

    def to_json(self) -> dict[str, Any]:
        if self == _UNTOUCHED:
            return {}
        return {
            "format": STATE_FORMAT,
            "last_attempt": encode_time(self.last_attempt),
            "last_success": encode_time(self.last_success),
            "last_failure": encode_time(self.last_failure),
            "last_error": self.last_error,
            "consecutive_failures": self.consecutive_failures,
            "next_attempt": encode_time(self.next_attempt),
            "retry_after": encode_time(self.retry_after),
            "ari": None if self.ari is None else self.ari.to_json(),
            "deploy": None if self.deploy is None else self.deploy.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Any, path: object) -> RenewalState:
        """The state read from ``path``, if its fields have the types renewal relies on."""
        # dict() of a JSON list would "work" for [[k, v]] and fail oddly otherwise.
        if not isinstance(raw, dict):
            raise KeystoreError(f"state file {path} is malformed: not a JSON object", STATE_HINT)
        failures = raw.get("consecutive_failures")
        if failures is not None and (not isinstance(failures, int) or isinstance(failures, bool) or failures < 0):
            raise KeystoreError(f"state file {path} is malformed: consecutive_failures = {failures!r}", STATE_HINT)
        times = {key: _state_time(raw, key, path, key) for key in _STATE_TIMES if key in raw}
        for key in ("ari", "deploy"):
            if not isinstance(raw.get(key) or {}, dict):
                raise KeystoreError(f"state file {path} is malformed: {key} is not an object", STATE_HINT)
        ari, deploy = raw.get("ari"), raw.get("deploy")
        return cls(
            **times,
            last_error=opt_str(raw.get("last_error")),
            consecutive_failures=failures or 0,
            ari=_ari(ari, path) if ari else None,
            deploy=_deploy(deploy, path) if deploy else None,
        )


_UNTOUCHED = RenewalState()


def _state_time(raw: Mapping[str, Any], key: str, path: object, shown: str) -> datetime.datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    try:
        return decode_time(value)
    except (TypeError, ValueError):
        raise KeystoreError(f"state file {path} is malformed: {shown} = {value!r} is not a time", STATE_HINT) from None


def _ari(raw: Mapping[str, Any], path: object) -> AriState:
    times = ("window_start", "window_end", "chosen", "fetched_at", "next_check")
    return AriState(
        cert_id=opt_str(raw.get("cert_id")),
        explanation_url=opt_str(raw.get("explanation_url")),
        unsupported=bool(raw.get("unsupported")),
        last_error=opt_str(raw.get("last_error")),
        **{key: _state_time(raw, key, path, f"ari.{key}") for key in times if raw.get(key) is not None},
    )


def _deploy(raw: Mapping[str, Any], path: object) -> DeployState:
    return DeployState(
        pending=bool(raw.get("pending")),
        serial=opt_str(raw.get("serial")),
        error=opt_str(raw.get("error")),
        attempted_at=_state_time(raw, "attempted_at", path, "deploy.attempted_at"),
    )
