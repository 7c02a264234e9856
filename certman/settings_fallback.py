"""The settings a run falls back on when its certman.toml (or a CERTMAN_* value, or a
flag) is invalid: ``doctor`` still checks the keystore with them, and the run log of a
run that fails so is still written to that keystore."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .config import Settings, load_settings
from .errors import CertmanError
from .paths import absolute


def settings_without_config(source: Path, env: Mapping[str, str], overrides: Mapping[str, Any]) -> Settings:
    """The settings without the file that failed: the environment and flags still count.

    A bad ``CERTMAN_*`` value or flag drops the other ones too, never ``CERTMAN_KEYSTORE``
    or ``--keystore``.
    """
    keystore_only = {k: v for k, v in env.items() if k == "CERTMAN_KEYSTORE" or not k.startswith("CERTMAN_")}
    flags = dict(overrides)
    if overrides.get("keystore") is None and not env.get("CERTMAN_KEYSTORE"):
        flags["keystore"] = keystore_in(source)
    attempts = [(env, flags), (keystore_only, flags), (keystore_only, {"keystore": flags.get("keystore")})]
    for attempt_env, attempt_flags in attempts:
        try:
            return load_settings(Path(os.devnull), env=attempt_env, overrides=attempt_flags)
        except CertmanError:
            continue
    return Settings()


def keystore_in(path: Path) -> str | None:
    """The ``keystore`` of a config file that is invalid elsewhere, if it can be read at all."""
    try:
        with open(path, "rb") as fh:
            value = tomllib.load(fh).get("keystore")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    # As every relative path in a config file: against the file's directory.
    return absolute(value, path.parent) if isinstance(value, str) else None
