"""The renewal digests in ``index.json`` (``records.RenewalDigest``): set, dropped, trusted.

A digest lets a no-op renew skip a certificate without opening its state.json, so it must
never outlive the state it was made from. Two rules keep it so:

- It is set only under the keystore lock, from a state read under that lock, by a run
  that holds the renewal lock (``note``).
- Every write of state.json drops it first, in one index write under the keystore lock
  held across the state write (``FileKeystore.write_state``), or the renew run dropped
  it before its pool started and sets it again at the end (``FileKeystore.digests_dropped``).

So a crash at any point leaves either the old state with its digest, or no digest (the
next run reads state.json and sets it again). The index is written by the one atomic
path every index write takes (``files.write_file``: fsynced temporary, rename, directory
fsync), so the durability of index.json is what it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from msgspec import structs

from ..errors import KeystoreError
from . import index
from .layout import Layout
from .records import IndexEntry, RenewalDigest
from .state_records import RenewalState

DigestOf = Callable[[str, IndexEntry, RenewalState], RenewalDigest | None]


def drop(layout: Layout, names: Iterable[str]) -> None:
    """Remove the digests of ``names`` (one index write, none when none had one); the caller
    holds the keystore lock."""
    index.mark(layout, {name: {"renewal": None} for name in names})


def note(layout: Layout, states: Mapping[str, RenewalState], digest_of: DigestOf) -> None:
    """Mark each entry of ``states`` with what ``list`` shows of its state and with
    ``digest_of(name, entry, state)``, in one index write when anything changes; the caller
    holds the keystore lock, read ``states`` under it, and holds the renewal lock. An entry
    that does not decode is left as it is, as ``index.mark`` leaves it."""
    decoded = index.read_decoded(layout)
    if decoded is None:
        _note_raw(layout, states, digest_of)
        return
    changed = False
    for name, state in states.items():
        entry = decoded.get(name)
        if entry is None:
            continue
        marked = structs.replace(entry, **index.listing_marks(state, entry), renewal=digest_of(name, entry, state))
        if marked != entry:
            decoded[name] = marked
            changed = True
    if changed:
        # Records, each made JSON only as its line is written: a first run over 100,000
        # certificates never holds them all as dicts.
        index.write_all(layout, decoded)


def _note_raw(layout: Layout, states: Mapping[str, RenewalState], digest_of: DigestOf) -> None:
    """``note`` over an index some entry of which does not decode: kept as stored."""
    certs = index.raw_entries(layout)
    changed = False
    for name, state in states.items():
        try:
            entry = IndexEntry.from_json(certs[name], layout.index, name)
        except (KeyError, KeystoreError):
            continue
        marked = structs.replace(entry, **index.listing_marks(state, entry), renewal=digest_of(name, entry, state))
        if marked != entry:
            certs[name] = marked.to_json()
            changed = True
    if changed:
        index.write_entries(layout, certs)
