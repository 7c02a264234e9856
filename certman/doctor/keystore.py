"""The keystore's owner and modes: what a renewal run as this user may read, and nobody else may change."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ..errors import CertmanError
from ..keystore import live_links
from ..keystore.exposure import exposure_hint
from ..keystore.layout import SECRET_FILES, Layout
from .report import Check
from .scope import Scope


def keystore_checks(scope: Scope) -> Iterator[Check]:
    yield check_keystore(scope.settings.keystore)
    keys = check_private_keys(scope.settings.keystore)
    if not keys.ok:  # no line when every key is private: the keystore line speaks for it
        yield keys
    yield from check_live_links(scope.settings.keystore)


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
        if path.name in SECRET_FILES and not path.name.endswith(".pem") and st.st_mode & 0o077:
            problems.append(f"{path} is mode {stat.S_IMODE(st.st_mode):04o}, not 0600")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Check(
            "keystore", False, problems[0] + more, f"chown -R {uid} {root}; chmod 700 directories and 600 key files"
        )
    return Check("keystore", True, f"{root}: {count} entries, owner and modes safe")


def check_private_keys(root: Path) -> Check:
    """FAIL naming every private key file (live, old versions, accounts, pending orders)
    that group or others may access: a key readable by others is a leaked secret."""
    exposed = []
    for path in sorted(root.rglob("*.pem")) if root.is_dir() else []:
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if path.name in SECRET_FILES and stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            exposed.append((path, stat.S_IMODE(st.st_mode)))
    if exposed:
        detail = "; ".join(f"{path} is mode {mode:04o}, readable by others" for path, mode in exposed)
        return Check("private keys", False, detail, exposure_hint(p for p, _ in exposed))
    return Check("private keys", True, "every key file is 0600")


def check_live_links(root: Path) -> list[Check]:
    """A FAIL check for each certificate with a version whose ``live/<name>`` is not a link
    (a directory, a file, or missing), as ``renew`` and ``issue`` would find and repair it."""
    layout = Layout(root)
    try:
        names = sorted(d.parent.name for d in (root / "certs").glob("*/versions") if any(d.iterdir()))
        found = live_links.problems(layout, names)
    except (OSError, CertmanError) as exc:
        return [Check("live links", False, f"cannot inspect {layout.live}: {exc}")]
    # No line when every link is in place: the keystore line above already speaks for it.
    return [
        Check(
            f"live {name}",
            False,
            f"{layout.live_link(name)} is {'missing' if kind == live_links.MISSING else f'a {kind}, not a link'}",
            live_links.REPAIR_HINT,
        )
        for name, kind in found.items()
    ]
