"""What differs between two records of one certificate, and whether a new certificate is needed.

A new certificate is ordered only when the certificate itself would differ: the set of
identifiers (not their order), the key type, the CA, the profile or the preferred
chain. Every other setting (CA bundle, fallback CAs, solvers, reloaders, renew window)
is how certman gets or deploys it: a change updates the record, and a change of the
reloaders redeploys the live certificate. Both records are compared as spec.toml
records them (``certman.recording``), so resolving a path or a program is no change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ..config import CertSpec
from ..errors import CertmanError
from ..recording import recorded_spec

# The fields that make a different certificate, in the order they are reported.
REISSUE_FIELDS = ("identifiers", "key_type", "server", "profile", "preferred_chain")
# The fields that only change how it is obtained or deployed.
RECORD_FIELDS = ("ca_bundle", "fallback", "solvers", "reloaders", "renew_before_days")
# spec.toml's key of each field, where it differs.
_KEYS = {"solvers": "solver", "reloaders": "reloader"}
_SECRET_WORDS = ("secret", "token", "password", "hmac")


class FieldChange(msgspec.Struct, frozen=True):
    """One field of the record, before and after, as spec.toml records it (None: unset)."""

    field: str
    before: Any
    after: Any

    @property
    def reissues(self) -> bool:
        return self.field in REISSUE_FIELDS

    def describe(self) -> str:
        """``identifiers changed (added b.example)``, ``solvers: standalone(port=80) -> ...``."""
        if self.field == "identifiers":
            added = sorted(set(self.after) - set(self.before))
            removed = sorted(set(self.before) - set(self.after))
            parts = [f"added {', '.join(added)}"] * bool(added) + [f"removed {', '.join(removed)}"] * bool(removed)
            return f"identifiers changed ({'; '.join(parts)})"
        return f"{self.field}: {_shown(self.field, self.before)} -> {_shown(self.field, self.after)}"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "reissue": self.reissues, "change": self.describe()}


class SpecDiff(msgspec.Struct, frozen=True):
    """Every field that differs between two records of one certificate."""

    changes: tuple[FieldChange, ...] = ()

    @property
    def reissue(self) -> bool:
        """Whether the certificate itself would differ, so a new one must be ordered."""
        return any(c.reissues for c in self.changes)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.changes)

    @property
    def reloaders_changed(self) -> bool:
        return "reloaders" in self.fields

    def summary(self) -> str:
        """``re-issue: identifiers changed (added b.example)``, ``record updated: reloaders; no re-issue``."""
        if not self.changes:
            return "no change"
        if self.reissue:
            return f"re-issue: {self.reissue_reasons()}"
        return f"record updated: {', '.join(self.fields)}; no re-issue"

    def reissue_reasons(self) -> str:
        """The changes that make a different certificate, e.g. ``identifiers changed (added b.example)``."""
        return "; ".join(c.describe() for c in self.changes if c.reissues)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reissue": self.reissue,
            "changed": list(self.fields),
            "summary": self.summary(),
            "changes": [c.to_dict() for c in self.changes],
        }


def diff_specs(before: CertSpec, after: CertSpec) -> SpecDiff:
    """What changes from record ``before`` to ``after`` (both of the same certificate)."""
    old, new = _recorded(before), _recorded(after)
    changes = []
    for field in REISSUE_FIELDS + RECORD_FIELDS:
        key = _KEYS.get(field, field)
        was, now = old.get(key), new.get(key)
        if field == "identifiers" and set(was or ()) == set(now or ()):
            continue
        if was != now:
            changes.append(FieldChange(field, was, now))
    return SpecDiff(tuple(changes))


def _recorded(spec: CertSpec) -> dict[str, Any]:
    try:
        spec = recorded_spec(spec)
    except CertmanError:
        pass  # a program no longer found: compared as written, it is reported where it runs
    return spec.storable().to_dict()


def _shown(field: str, value: Any) -> str:
    if value is None or value == []:
        return "(none)"
    if field == "fallback":
        return ", ".join(str(t.get("server")) for t in value)
    if field in ("solvers", "reloaders"):
        return ", ".join(_table(t) for t in value)
    return str(value)


def _table(table: Mapping[str, Any]) -> str:
    options = ", ".join(
        f"{k}=***" if any(w in k.lower() for w in _SECRET_WORDS) else f"{k}={_option(v)}"
        for k, v in table.items()
        if k != "name"
    )
    return f"{table.get('name', '?')}({options})"


def _option(value: Any) -> str:
    # An empty string (a standalone solver's "every address") shows as "", never as a bare "address=".
    return '""' if value == "" else str(value)
