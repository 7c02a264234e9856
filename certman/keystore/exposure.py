"""Private keys that users other than the keystore's owner may read.

certman writes every key 0600. A looser mode was set from outside (a restore with the
wrong umask, a chmod for a proxy), so certman does not put it back silently: the key
may already have been copied, and only the operator knows whether to replace it.
``doctor`` fails such a key, and ``renew`` warns on every run until it is fixed, as long
as the keystore's root lets group or others through (``reachable_by_others``): under a
root certman made 0700, no other user can reach any key, whatever its own mode, and a run
over 100,000 certificates is spared 200,000 stat calls.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from .layout import ACCOUNT_KEY_FILE, COMBINED_FILE, KEY_FILE, Layout


def reachable_by_others(layout: Layout) -> bool:
    """Whether users other than the owner may pass through the keystore's root (group or
    others have search permission on it), so a key's own mode decides who reads it.
    True when the root cannot be inspected: then each key is checked."""
    try:
        return bool(os.stat(layout.root).st_mode & (stat.S_IXGRP | stat.S_IXOTH))
    except OSError:
        return True


def exposed_keys(layout: Layout, names: Iterable[str]) -> list[tuple[Path, int]]:
    """Each live key of ``names`` and each account key that group or others may access,
    with its permission bits; one ``stat`` per file, a missing file is not reported."""
    # Strings, not Paths, until one is found: renew checks two keys per certificate on
    # every run, 200,000 at 100,000 certificates, where building Paths cost seconds.
    live = str(layout.live)
    found = []
    for name in names:
        for key in (f"{live}/{name}/{KEY_FILE}", f"{live}/{name}/{COMBINED_FILE}"):
            mode = _mode(key)
            if mode is not None and mode & 0o077:
                found.append((Path(key), mode))
    try:
        accounts = sorted(d / ACCOUNT_KEY_FILE for d in layout.accounts.iterdir())
    except OSError:
        accounts = []  # no accounts yet
    for path in accounts:
        mode = _mode(str(path))
        if mode is not None and mode & 0o077:
            found.append((path, mode))
    return found


def _mode(path: str) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def exposure_hint(paths: Iterable[Path]) -> str:
    """What to do about exposed keys: tighten the mode, and replace a key that may have leaked,
    naming the certificates (``live/<name>/…``) and whether an account key is among them."""
    paths = list(paths)
    names = sorted({_cert_name(p) for p in paths if p.name != ACCOUNT_KEY_FILE})
    replace = [f"`certman renew --force {' '.join(names)}` issues new keys"] if names else []
    if any(p.name == ACCOUNT_KEY_FILE for p in paths):
        replace.append("`certman account rollover` changes an account key")
    return f"chmod 600 {' '.join(str(p) for p in paths)}; if others may have copied a key, replace it: " + ", ".join(
        replace
    )


def _cert_name(key: Path) -> str:
    # live/<name>/privkey.pem, or the version it points to: certs/<name>/versions/<v>/privkey.pem.
    return key.parents[2].name if key.parent.parent.name == "versions" else key.parent.name
