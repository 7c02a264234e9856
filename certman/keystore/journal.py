"""``index.journal``: the index entries stored since ``index.json`` was last written whole.

A store appends its entry as one line instead of rewriting ``index.json`` (at 100,000
certificates, 54 MB per store). Every reader applies the journal on top of the index.
Once the journal outgrows an eighth of the index, the next write folds it in: the whole
index is written with a new token and the journal is removed. A store therefore costs
O(1) amortized, and a reader reads at most 1/8 more.

Which index a journal extends is said by a token, a hash of the index's entries
(``index.index_chunks``): ``index.json`` ends with ``"journal": "<token>"`` and the
journal's first line is ``{"journal": "<token>"}``. A
journal with another token (left by a run killed between writing the whole index and
removing the journal, or restored beside another index) is not applied, and the next
append starts a new one. Each further line is ``["<name>", {entry} or null]``; a last
line without its newline is an append a killed run did not finish, and is not applied.

Durability is what a rewrite of ``index.json`` gave. A line is appended with one
write(2) and fsynced on the journal's own descriptor before the store returns. A
directory fsync does not make a file's data durable, so the fsync of the file is what
counts. A new journal is written whole, fsynced, renamed into place and its directory
fsynced, as ``files.write_file`` does. The SIGKILL tests keep the page cache, so they
cannot notice a lost fsync; this argument is what covers a power loss.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..errors import KeystoreError
from . import files
from .layout import SECRET_MODE, Layout

JOURNAL_FILE = "index.journal"
# Appends past this share of index.json's size go into a whole write of the index instead.
FOLD_SHARE = 8
_TAIL = re.compile(rb'"journal": "([0-9a-f]{16})"\}\n\Z')
_HINT = "run `certman doctor`; the certificates themselves are intact"


def path_of(layout: Layout) -> Path:
    """Where the journal of ``layout``'s index lies (beside it)."""
    return layout.root / JOURNAL_FILE


def token_in(index_data: bytes) -> str | None:
    """The token at the end of ``index.json``'s bytes; None for an index without one
    (written by certman before the journal, or by hand): nothing may be appended to it."""
    found = _TAIL.search(index_data[-64:])
    return found.group(1).decode() if found else None


def line(name: str, entry: Any) -> bytes:
    """The journal line storing ``entry`` (a JSON object; None: removed) for ``name``."""
    return json.dumps([name, entry], sort_keys=True, separators=(",", ":")).encode() + b"\n"


def snapshot(layout: Layout) -> tuple[bytes | None, list[tuple[str, Any]]]:
    """index.json's bytes (None: none) and the records of the journal that extends it."""
    while True:
        data = _index_bytes(layout)
        if data is None:
            # A journal without an index is a stale one: the index is written whole first.
            return None, []
        token = _token_of(data)
        found = records(layout, token)
        if found is not None:
            return data, found
        # The journal names another index: this one was replaced since it was read (read
        # both again), or the journal is stale (the index is the same one: nothing to apply).
        again = _index_bytes(layout)
        if again is not None and _token_of(again) == token:
            return again, []


def _token_of(data: bytes) -> str | None:
    token = token_in(data)
    if token is None and b'"journal"' in data[-256:]:
        # Written by another JSON writer (a test, an operator's script): the slow way.
        try:
            found = json.loads(data).get("journal")
        except (ValueError, AttributeError):
            return None
        token = found if isinstance(found, str) else None
    return token


def _index_bytes(layout: Layout) -> bytes | None:
    """index.json's bytes; None if there is none, ``KeystoreError`` naming it if unreadable."""
    try:
        return layout.index.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeystoreError(f"index {layout.index} is unreadable: {exc}", _HINT) from exc


def records(layout: Layout, token: str | None) -> list[tuple[str, Any]] | None:
    """The (name, entry or None) records of the journal extending the index with ``token``,
    oldest first; ``[]`` when there is none for it, None when the journal names another
    token (the caller reads the index again: it was rewritten meanwhile, or the journal is
    a stale one). ``KeystoreError`` naming the journal if a complete line is malformed."""
    path = path_of(layout)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise KeystoreError(f"index journal {path} is unreadable: {exc}", _HINT) from exc
    lines = data.split(b"\n")
    # The last piece is b"" after a complete line, or an append a killed run cut short.
    complete = lines[:-1]
    if not complete or token is None or complete[0] != _header(token).rstrip(b"\n"):
        return None
    found: list[tuple[str, Any]] = []
    for number, raw in enumerate(complete[1:], start=2):
        try:
            name, entry = json.loads(raw)
            if not isinstance(name, str) or not (entry is None or isinstance(entry, dict)):
                raise ValueError("not a [name, entry] pair")
        except ValueError as exc:
            raise KeystoreError(f"index journal {path} is malformed at line {number}: {exc}", _HINT) from None
        found.append((name, entry))
    return found


def _header(token: str) -> bytes:
    return json.dumps({"journal": token}).encode() + b"\n"


def room_for(layout: Layout, data: bytes) -> str | None:
    """The token to append ``data`` (a ``line``) under, or None: write the whole index
    instead (no index yet, an index without a token, or the journal would outgrow
    1/``FOLD_SHARE`` of it). The caller holds the keystore lock."""
    try:
        with open(layout.index, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(max(0, size - 64))
            token = token_in(fh.read())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise files.storage_error(exc, layout.index, "reading") from exc
    journal, ends_a_line = _size_and_end(path_of(layout))
    # After a cut-short append, the next line would follow the fragment: write whole instead.
    if token is None or not ends_a_line or (journal + len(data)) * FOLD_SHARE > size:
        return None
    return token


def _size_and_end(path: Path) -> tuple[int, bool]:
    """The journal's size, and whether it ends with a whole line (or is missing or empty)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            return size, size == 0 or os.pread(fh.fileno(), 1, size - 1) == b"\n"
    except FileNotFoundError:
        return 0, True
    except OSError as exc:
        raise files.storage_error(exc, path, "reading") from exc


def append(layout: Layout, token: str, data: bytes) -> None:
    """Append ``data`` (a ``line``) to the journal of the index with ``token``, durably;
    the caller holds the keystore lock. ``KeystoreError`` naming the journal on failure."""
    path = path_of(layout)
    if records_token(path) != token:
        # None yet for this index (or a stale one): a new journal, written whole.
        files.write_file(path, _header(token) + data, SECRET_MODE)
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise files.storage_error(exc, path, "writing") from exc
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError as exc:
        # A partial line has no newline: readers skip it, and the next write is a whole one.
        raise files.storage_error(exc, path, "writing") from exc
    finally:
        os.close(fd)


def records_token(path: Path) -> str | None:
    """The token in the journal's first line; None without a journal (or a header)."""
    try:
        with open(path, "rb") as fh:
            first = fh.readline(128)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise files.storage_error(exc, path, "reading") from exc
    try:
        token = json.loads(first).get("journal") if first.endswith(b"\n") else None
    except (ValueError, AttributeError):
        return None
    return token if isinstance(token, str) else None


def remove(layout: Layout) -> None:
    """Remove the journal after the whole index was written with a new token; the caller
    holds the keystore lock. Not fsynced: a journal that comes back after a power loss
    names the old token, and is not applied."""
    files.remove(path_of(layout))
