"""Putting back ``live/<name>`` when something outside certman replaced the link.

Proxies read a certificate through ``live/<name>``, a symlink to its current version.
A backup restored with ``cp -rL`` leaves a real directory there, a script may leave a
regular file, or the link may be gone. ``FileKeystore.repair_live`` puts the link
back: the stray entry moves to ``archive/live/<name>-<stamp>`` (nothing is deleted),
then a fresh link to the current version is renamed into place, as ``store_version``
moves it. ``doctor`` reports the same findings without changing anything.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from . import files
from .layout import TMP_PREFIX, Layout

DIRECTORY = "directory"
FILE = "file"
MISSING = "missing"

REPAIR_HINT = "`certman renew` repairs it (so does `certman issue NAME`); the stray copy goes to the archive"


class LiveRepair(msgspec.Struct, frozen=True):
    """One ``live/<name>`` put back: what stood there (``found``: directory, file or missing),
    where it went (``archived_to``; None when the link was missing) and the version linked."""

    name: str
    path: Path
    found: str
    version: str
    archived_to: Path | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "found": self.found,
            "version": self.version,
            "archived_to": None if self.archived_to is None else str(self.archived_to),
        }

    def describe(self) -> str:
        was = "missing" if self.archived_to is None else f"a {self.found}, moved to {self.archived_to}"
        return f"repaired {self.path}: it was {was}; it links to version {self.version} again"


def problem(layout: Layout, name: str) -> str | None:
    """What stands at ``live/<name>`` instead of a link: DIRECTORY, FILE or MISSING; None for a link.

    ``KeystoreError`` if the path cannot be inspected.
    """
    path = layout.live_link(name)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return MISSING
    except OSError as exc:
        raise files.storage_error(exc, path, "inspecting") from exc
    if stat.S_ISLNK(mode):
        return None
    return DIRECTORY if stat.S_ISDIR(mode) else FILE


class LiveListing(msgspec.Struct, frozen=True):
    """One listing of live/ (``scan``): every entry's name, and the kind (DIRECTORY, FILE)
    of each that is not a link. A renew run lists live/ once for ``crashed`` and ``problems``."""

    names: list[str]
    odd: dict[str, str]


def scan(layout: Layout) -> LiveListing:
    """live/ as it is now (empty if missing); ``KeystoreError`` if it cannot be listed."""
    # Names only, and the kind of what is not a link: a DirEntry each would hold 15 MB
    # more at 100,000 certificates.
    names: list[str] = []
    odd: dict[str, str] = {}
    try:
        with os.scandir(layout.live) as listing:
            for entry in listing:
                names.append(entry.name)
                if not entry.is_symlink():
                    odd[entry.name] = DIRECTORY if entry.is_dir(follow_symlinks=False) else FILE
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise files.storage_error(exc, layout.live, "listing") from exc
    return LiveListing(names, odd)


def problems(layout: Layout, names: Iterable[str], listing: LiveListing | None = None) -> dict[str, str]:
    """``problem`` for each of ``names`` that has one, from one listing of live/ (``listing``,
    else made now: a renew run over 10,000 certificates must not pay an lstat each)."""
    listing = listing or scan(layout)
    names = list(names)
    wanted = set(names)
    # Set operations in C: 100,000 names with nothing to repair cost no loop in Python.
    trouble = wanted.difference(listing.names) | wanted.intersection(listing.odd)
    if not trouble:
        return {}
    return {name: listing.odd.get(name, MISSING) for name in names if name in trouble}


def current_version(versions: list[str], indexed: str | None) -> str | None:
    """The version ``live/<name>`` should link to: the indexed one while it exists, else the newest."""
    if indexed in versions:
        return indexed
    return versions[-1] if versions else None


def put_back(layout: Layout, name: str, found: str, version: str, stamp: str) -> LiveRepair:
    """Replace what stands at ``live/<name>`` by a link to ``version``; the caller holds its lock.

    The link is staged first, so a failure leaves the stray entry where it was.
    ``KeystoreError`` if a move fails.
    """
    link = layout.live_link(name)
    staged = files.stage_symlink(link, f"../certs/{name}/versions/{version}", tag=name)
    try:
        archived = None
        if found != MISSING:
            archived = files.move_to_archive(link, layout.archive / "live", _free_entry(layout, name, stamp))
        files.commit(staged, link)
    except BaseException:
        files.discard(staged)
        raise
    return LiveRepair(name, link, found, version, archived)


def _free_entry(layout: Layout, name: str, stamp: str) -> str:
    # A second repair within the same second (the stamp's unit) gets a counter, not an error.
    entry, count = f"{name}-{stamp}", 1
    while os.path.lexists(layout.archive / "live" / entry):
        count += 1
        entry = f"{name}-{stamp}-{count}"
    return entry


def crashed(layout: Layout, listing: LiveListing | None = None) -> bool:
    """Whether a run died mid-commit (a temporary lies in the root or live/), or index.json
    is gone while live/ has links: two listings (live/'s may be given), no reads."""
    live = (listing or scan(layout)).names
    for entries in (files.list_dir(layout.root), live):
        # map over str.startswith: the loop stays in C for live/'s 100,000 names.
        if any(map(str.startswith, entries, itertools.repeat(TMP_PREFIX))):
            return True
    return bool(live) and not layout.index.exists()


def may_have_crashed(layout: Layout) -> bool:
    """Whether a run may have died between moving a ``live/<name>`` and recording its
    entry: its staged entry lies in the root (``index.stage``), or there is no index."""
    root = files.list_dir(layout.root)
    return any(map(str.startswith, root, itertools.repeat(TMP_PREFIX))) or not layout.index.exists()
