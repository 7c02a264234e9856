"""``index.json``: per certificate name, the facts of its live version.

The index is a cache of what ``live/<name>`` points at, kept so that ``list`` and a
no-op ``renew`` over 10,000 certificates read one file and parse no certificate.
``store_version`` records its entry (``stage``/``commit``) in the same commit as the live
link, as a line of ``index.journal`` (``journal``) or, once that outgrows an eighth of
the index, by writing the whole index; every reader applies the journal. After a crash
between the link and the entry, ``live_entry`` rebuilds an entry from the version live/
points at.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import msgspec
from msgspec import structs

from ..errors import KeystoreError
from . import files, journal, live_links
from .decoders import QuietView, decode_index, decode_quiet
from .layout import CERT_FILE, SECRET_MODE, TMP_PREFIX, Layout
from .records import IndexEntry, VersionMeta
from .state_records import AriState, DeployState, RenewalState

if TYPE_CHECKING:
    from ..config import CertSpec

# 2: entries may hold a renewal digest (records.RenewalDigest); format 1 entries read as
# entries without one, and the next renew run fills it in.
# 3: the index ends with the token of the index.journal that extends it (``journal``);
# an index without one has no journal, and the next store writes it whole.
INDEX_FORMAT = 3
_HINT = "run `certman doctor`; the certificates themselves are intact"
T = TypeVar("T")


def dump_json(data: Any) -> bytes:
    """The bytes of every JSON file the keystore writes: sorted keys, indented, one trailing newline."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def index_bytes(certs: Mapping[str, Any]) -> bytes:
    """The bytes of ``index.json``: as ``dump_json`` orders it, but one compact line per
    certificate, and its journal token last (``index_chunks``). At 100,000 certificates the
    indented form is twice the size (and twice the reading), and only the pure-Python
    encoder writes it (seconds per store)."""
    return b"".join(index_chunks(certs))


def index_chunks(certs: Mapping[str, Any]) -> Iterator[bytes]:
    """``index_bytes`` in pieces of about a megabyte, each made as it is written: a whole
    write of 100,000 entries (JSON objects or ``IndexEntry``) never holds them all as text.

    The journal token (``journal.token_in``) is a hash of the entries: the same index has
    the same bytes whoever writes it, and a journal is applied only to the entries it was
    appended to (a random serial in each entry keeps an older index from coming back)."""
    digest = hashlib.sha256()
    encode = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
    piece: list[str] = ['{"certificates": {' + ("\n" if certs else "")]
    size = 0
    for number, name in enumerate(sorted(certs)):
        entry = certs[name]
        text = encode(entry.to_json() if isinstance(entry, IndexEntry) else entry)
        piece.append(f"{',' + chr(10) if number else ''}{json.dumps(name)}: {text}")
        size += len(text)
        if size > 1 << 20:
            chunk = "".join(piece).encode()
            digest.update(chunk)
            yield chunk
            piece, size = [], 0
    piece.append(chr(10) + "}" if certs else "}")
    chunk = "".join(piece).encode()
    digest.update(chunk)
    yield chunk + f', "format": {INDEX_FORMAT}, "journal": "{digest.hexdigest()[:16]}"}}\n'.encode()


def spec_bytes(spec: CertSpec) -> bytes:
    """The bytes of ``spec.toml``: the spec without its inline secrets, as TOML."""
    import tomli_w  # deferred: only writers need it

    return tomli_w.dumps(spec.storable().to_dict()).encode()


def raw_entries(layout: Layout) -> dict[str, Any]:
    """The index's entries as stored, journal applied, checked only for the file's shape;
    ``{}`` if there is none."""
    data, records = journal.snapshot(layout)
    certs = {} if data is None else _entries_of(data, layout.index)
    return _applied(certs, records, lambda name, raw: raw)


def _applied(certs: dict[str, T], records: list[tuple[str, Any]], convert: Callable[[str, Any], T]) -> dict[str, T]:
    """``certs`` with the journal's ``records`` applied in order, each entry ``convert``ed."""
    for name, raw in records:
        if raw is None:
            certs.pop(name, None)
        else:
            certs[name] = convert(name, raw)
    return certs


def _entries_of(data: bytes, path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise KeystoreError(f"index {path} is unreadable: {exc}", _HINT) from exc
    certs = raw.get("certificates", {}) if isinstance(raw, dict) else None
    if not isinstance(certs, dict):
        raise KeystoreError(f'index {path} is malformed: no "certificates" object', _HINT)
    return certs


def read(layout: Layout) -> dict[str, IndexEntry]:
    """Every entry, decoded, journal applied; the first bad one raises ``KeystoreError`` naming it."""
    path = layout.index
    data, records = journal.snapshot(layout)
    if data is None:
        return {}
    certs = decode_index(data)
    if certs is None:
        certs = {name: IndexEntry.from_json(raw, path, name) for name, raw in _entries_of(data, path).items()}
    return _applied(certs, records, functools.partial(_from_journal, journal.path_of(layout)))


def _from_journal(path: Path, name: str, raw: Any) -> IndexEntry:
    return IndexEntry.from_json(raw, path, name)


def read_decoded(layout: Layout) -> dict[str, IndexEntry] | None:
    """``read``, but None when some entry is not in the form certman writes (the caller then
    keeps the entries as stored: ``raw_entries``)."""
    data, records = journal.snapshot(layout)
    certs = {} if data is None else decode_index(data)
    try:
        return None if certs is None else _applied(certs, records, functools.partial(_from_journal, layout.index))
    except KeystoreError:
        return None


def read_quiet(layout: Layout) -> dict[str, QuietView] | None:
    """What a no-op renew needs of every entry (``decoders.QuietView``), journal applied;
    None when the index does not decode that way (``read`` then says what is wrong)."""
    data, records = journal.snapshot(layout)
    views = {} if data is None else decode_quiet(data)
    try:
        return None if views is None else _applied(views, records, lambda name, raw: msgspec.convert(raw, QuietView))
    except msgspec.ValidationError:
        return None


class Staged(NamedTuple):
    """One entry written ahead of its commit (``stage``): ``path`` is the temporary in the
    root that says, until ``commit`` removes or renames it, that a run may have died
    before the index caught up with live/ (``live_links.crashed``)."""

    path: Path
    line: bytes
    # The token of the index the line is appended to; None: ``path`` is the whole index.
    token: str | None


def stage(layout: Layout, name: str, entry: IndexEntry | None) -> Staged:
    """Write ahead ``name``'s entry (None: its removal); the caller holds the keystore lock
    until ``commit``. O(1) while the journal has room, else the whole index (amortized O(1))."""
    data = journal.line(name, None if entry is None else entry.to_json())
    token = journal.room_for(layout, data)
    if token is not None:
        return Staged(files.stage_file(layout.index, data, SECRET_MODE, tag="journal"), data, token)
    # The other entries are kept as stored: writing one certificate's entry must not
    # depend on every other entry being well-formed.
    certs = raw_entries(layout)
    if entry is None:
        certs.pop(name, None)
    else:
        certs[name] = entry.to_json()
    return Staged(files.stage_file(layout.index, index_bytes(certs), SECRET_MODE), data, None)


def commit(layout: Layout, staged: Staged) -> None:
    """Make a ``stage``d entry what every reader sees; ``KeystoreError`` if that fails (the
    temporary then stays, so the next run brings the index in line with live/)."""
    if staged.token is None:
        files.commit(staged.path, layout.index)
        journal.remove(layout)
        return
    journal.append(layout, staged.token, staged.line)
    files.discard(staged.path)


def write(layout: Layout, name: str, entry: IndexEntry | None) -> None:
    """Replace ``name``'s entry (None: remove it); the caller holds the keystore lock."""
    staged = stage(layout, name, entry)
    try:
        commit(layout, staged)
    except BaseException:
        files.discard(staged.path)
        raise


def mark(layout: Layout, fields: Mapping[str, Mapping[str, Any]]) -> None:
    """Set ``fields`` on the entries of the names in ``fields``, in one write when anything
    changes; the caller holds the keystore lock. A name without an entry, or with one that
    does not decode, is left as it is: bookkeeping must not fail the run that records it."""
    _mark_each(layout, list(fields), lambda name, _: fields[name])


def _mark_each(layout: Layout, names: list[str], values_of: Callable[[str, IndexEntry], Mapping[str, Any]]) -> None:
    certs = raw_entries(layout)
    changed = False
    for name in names:
        try:
            entry = IndexEntry.from_json(certs[name], layout.index, name)
        except (KeyError, KeystoreError):
            continue
        values = values_of(name, entry)
        if any(getattr(entry, k) != v for k, v in values.items()):
            certs[name] = structs.replace(entry, **values).to_json()
            changed = True
    if changed:
        write_entries(layout, certs)


def write_entries(layout: Layout, certs: Mapping[str, Any]) -> None:
    """Replace the index with ``certs`` as stored (JSON objects or ``IndexEntry``), the journal folded in (the
    caller read ``certs`` with it applied); the caller holds the keystore lock."""
    files.write_file(layout.index, index_chunks(certs), SECRET_MODE)
    journal.remove(layout)


def mark_states(layout: Layout, states: Mapping[str, RenewalState]) -> None:
    """Copy into the index what ``list`` decides from of each state: until when it backs
    off, the serial whose deploy is pending and the ARI renewal time (so ``list`` reads no
    state file)."""
    _mark_each(layout, list(states), lambda name, entry: listing_marks(states[name], entry))


def listing_marks(state: RenewalState, entry: IndexEntry) -> dict[str, Any]:
    """The ``IndexEntry`` fields ``list`` decides from of ``state`` (``state_of_marks``
    turns them back into a state): until when it backs off, the serial whose deploy is
    pending, and when the CA's ARI window for ``entry``'s certificate says to renew."""
    ari = state.ari
    usable = ari is not None and ari.usable_for(entry.ari_cert_id, entry.not_before)
    return {
        "backoff_until": state.next_attempt if state.consecutive_failures else None,
        "undeployed_serial": state.deploy.serial if state.deploy and state.deploy.pending else None,
        "ari_renew_at": (ari.chosen or ari.window_start) if usable and ari is not None else None,
    }


def state_of_marks(entry: IndexEntry) -> RenewalState:
    """The part of ``state.json`` that ``entry``'s marks mirror, for deciding as renew does
    without reading it: the backoff (as one failure), the pending deploy, and the ARI
    renewal time (as a window from it to notAfter, chosen at its start)."""
    at = entry.ari_renew_at
    return RenewalState(
        consecutive_failures=1 if entry.backoff_until is not None else 0,
        next_attempt=entry.backoff_until,
        deploy=DeployState(pending=True, serial=entry.undeployed_serial) if entry.undeployed_serial else None,
        ari=AriState(cert_id=entry.ari_cert_id, window_start=at, window_end=entry.not_after, chosen=at) if at else None,
    )


def write_all(layout: Layout, certs: Mapping[str, IndexEntry]) -> None:
    """Replace the whole index; the caller holds the keystore lock."""
    write_entries(layout, certs)


def follow_spec(layout: Layout, name: str, renew_before_days: float | None) -> None:
    """Give ``name``'s entry the renew window of its spec, which `certman reconfigure` changes
    without a new version (renew decides from the index alone); the caller holds the keystore lock."""
    entry = read(layout).get(name)
    if entry is not None and entry.renew_before_days != renew_before_days:
        # The digest's renewal time came from the old window: the next run reads state.json.
        write(layout, name, structs.replace(entry, renew_before_days=renew_before_days, renewal=None))


def entry_for(meta: VersionMeta, identifiers: tuple[str, ...], key_type: str, server: str) -> IndexEntry:
    """The index entry of a version with ``meta``, issued for ``identifiers`` by ``server``."""
    fields = {f: getattr(meta, f) for f in VersionMeta.__struct_fields__}
    return IndexEntry(**fields, identifiers=identifiers, key_type=key_type, server=server)


def live_version(layout: Layout, name: str) -> str | None:
    """The version ``live/<name>`` links to; None without a link. ``KeystoreError`` when
    something else stands there (a backup restored as a directory, say)."""
    link = layout.live_link(name)
    try:
        return os.path.basename(os.readlink(link))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise files.storage_error(exc, link, "reading") from exc
    kind = live_links.problem(layout, name)
    raise KeystoreError(f"{link} is not a link to a version of {name} but a {kind}", live_links.REPAIR_HINT)


def read_meta(layout: Layout, name: str, version: str) -> VersionMeta | None:
    path = layout.meta(name, version)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"{path} is unreadable: {exc}") from exc
    return VersionMeta.from_json(raw, path)


def live_entry(
    layout: Layout, name: str, entry: IndexEntry | None, read_spec: Callable[[str], CertSpec]
) -> IndexEntry | None:
    """``name``'s entry rebuilt from the version live/<name> points at, or None when the
    index already agrees (or the link dangles: archived, nothing to list)."""
    # A live/ entry that is not a link is put back by ``FileKeystore.repair_live``, not here.
    version = live_version(layout, name) if os.path.islink(layout.live_link(name)) else None
    if version is None or (entry is not None and entry.version == version):
        return None
    from cryptography import x509  # deferred: only a repair parses a certificate

    from ..keys import CertFacts

    directory = layout.versions(name) / version
    try:
        meta = read_meta(layout, name, version)
        leaf = x509.load_pem_x509_certificate((directory / CERT_FILE).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeystoreError) as exc:
        message = exc.message if isinstance(exc, KeystoreError) else str(exc)
        raise KeystoreError(
            f"live version {directory} of {name} is unreadable: {message}", "run `certman doctor`"
        ) from exc
    if meta is None:
        return None
    spec = read_spec(name)
    # Identifiers from the certificate itself: the spec may have been edited since.
    # The renew window is the record's: `certman reconfigure` changes it without a new version.
    meta = structs.replace(meta, version=version, renew_before_days=spec.renew_before_days)
    return entry_for(meta, CertFacts.of(leaf).identifiers, spec.key_type, spec.server)


def bring_in_line(
    layout: Layout, name: str, read_spec: Callable[[str], CertSpec], lock: Callable[[], AbstractContextManager[None]]
) -> None:
    """Rebuild ``name``'s entry from the version live/ points at if they disagree, under ``lock()``."""
    if live_entry(layout, name, read(layout).get(name), read_spec) is not None:
        with lock():
            certs = read(layout)
            entry = live_entry(layout, name, certs.get(name), read_spec)
            if entry is not None:
                certs[name] = entry
                write_all(layout, certs)


def repair_locked(layout: Layout, read_spec: Callable[[str], CertSpec], *, only_after_crash: bool) -> list[str]:
    """Rebuild every entry that disagrees with live/; the caller holds the keystore lock.

    With ``only_after_crash``, only when a temporary in the root shows a run died mid-commit.
    """
    # Only runs holding the keystore lock stage files in the root, so under it every
    # temporary there is a dead run's; live/ temporaries may be another certificate's
    # store in flight, and stay for that certificate's clean_leftovers.
    if not files.remove_leftovers(layout.root) and only_after_crash:
        return []
    certs = read(layout)
    linked = [e for e in files.list_dir(layout.live) if not e.startswith(TMP_PREFIX)]
    repaired = []
    for name in sorted(set(certs) | set(linked)):
        entry = live_entry(layout, name, certs.get(name), read_spec)
        if entry is not None:
            certs[name] = entry
            repaired.append(name)
    if repaired:
        write_all(layout, certs)
    return repaired
