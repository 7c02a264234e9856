"""ACME profiles (draft-aaron-acme-profiles): a CA lists them in its directory's meta.profiles."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import UsageError


def check_profile(offered: Mapping[str, str] | None, profile: str, directory_url: str) -> None:
    """Refuse a profile the CA does not list, before any order is created."""
    if not offered:
        raise UsageError(
            f"the CA at {directory_url} does not offer certificate profiles, so --profile {profile} cannot be used",
            "drop --profile (and `profile` from the spec) for this CA",
        )
    if profile not in offered:
        raise UsageError(
            f"the CA at {directory_url} has no profile {profile!r}",
            "choose one of: " + ", ".join(f"{name} ({offered[name]})" for name in sorted(offered)),
        )
