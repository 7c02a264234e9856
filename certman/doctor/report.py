"""What a doctor check returns, and the report of a whole run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One line of ``certman doctor``: what was checked, whether it passed, and how to fix it."""

    name: str
    ok: bool
    detail: str
    hint: str | None = None


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


def owners_text(owners: tuple[str, ...]) -> str:
    """`` (for a.example, b.example)``: which certificates a shared setting belongs to; empty for none."""
    return f" (for {', '.join(owners)})" if owners else ""
