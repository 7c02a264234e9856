"""The keystore's owner and modes: what a renewal run as this user may read, and nobody else may change."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ..keystore.layout import SECRET_FILES
from .report import Check
from .scope import Scope


def keystore_checks(scope: Scope) -> Iterator[Check]:
    yield check_keystore(scope.settings.keystore)


def check_keystore(root: Path) -> Check:
    """Owned by us, not writable by others, and every key file private."""
    if not root.exists():
        return Check("keystore", True, f"{root} does not exist yet; the first issue creates it (0700)")
    problems: list[str] = []
    uid = os.geteuid()
    count = 0
    for path in [root, *sorted(root.rglob("*"))]:
        try:
            st = os.lstat(path)
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")
            continue
        count += 1
        if stat.S_ISLNK(st.st_mode):
            continue
        if st.st_uid != uid:
            problems.append(f"{path} is owned by uid {st.st_uid}, not {uid}")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            problems.append(f"{path} is writable by group or others ({stat.S_IMODE(st.st_mode):04o})")
        if path.name in SECRET_FILES and st.st_mode & 0o077:
            problems.append(f"{path} holds a key but is mode {stat.S_IMODE(st.st_mode):04o}, not 0600")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check(
            "keystore", False, problems[0] + more, f"chown -R {uid} {root}; chmod 700 directories and 600 key files"
        )
    return Check("keystore", True, f"{root}: {count} entries, owner and modes safe")
