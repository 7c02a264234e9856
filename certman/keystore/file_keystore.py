"""``FileKeystore``: the ``Keystore`` contract over a local directory (see ``layout`` for the tree).

Atomicity comes from rename(2) of fsynced temporaries (``files``), mutual exclusion
from flock (``locks``). Beyond the contract it keeps ``live/<name>``, the stable
paths proxies are configured with, and repairs the index after a crash.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from msgspec import structs

from ..config import CertSpec
from ..errors import KeystoreError, UsageError
from ..solvers.http01 import TokenBoard
from . import digests, files, index, live_links, locks, past_commit, pending, state_files
from .contract import Keystore, StoredVersion
from .decoders import QuietView
from .keyfiles import ACCOUNT_HINT, SPEC_HINT
from .layout import (
    CERT_FILE,
    CHAIN_FILE,
    COMBINED_FILE,
    FILE_MODES,
    FULLCHAIN_FILE,
    KEY_FILE,
    META_FILE,
    SECRET_MODE,
    Layout,
    LivePaths,
    check_parent,
    version_name,
)
from .live_links import LiveListing, LiveRepair
from .records import AccountRecord, IndexEntry, RevocationMarker, VersionMeta
from .state_records import RenewalState


class FileKeystore:
    """A keystore directory (``lock_timeout`` in seconds); creating one makes the root 0700 and checks it."""

    # Set by a fleet host's renew (fleet.renew): HTTP-01 answers go to the store; did another host commit?
    token_board: TokenBoard | None = None
    committed_elsewhere: Callable[[str], bool] | None = None

    def __init__(self, root: Path | str, *, lock_timeout: float = 30.0) -> None:
        self.layout = Layout(Path(root).absolute())
        self.lock_timeout = lock_timeout
        check_parent(self.layout.root)
        # Names whose renewal digest this run dropped already (``digests_dropped``).
        self._undigested: set[str] = set()
        files.ensure_dir(self.layout.root)
        files.claim_root(self.layout.root)

    @property
    def root(self) -> Path:
        return self.layout.root

    @property
    def location(self) -> str:
        return str(self.layout.root)

    # -- locks ---------------------------------------------------------------------------

    @contextmanager
    def lock_cert(self, name: str) -> Iterator[None]:
        with locks.hold(self.layout.cert_lock(name), timeout=self.lock_timeout, what=f"certificate {name}"):
            yield

    @contextmanager
    def lock_keystore(self) -> Iterator[None]:
        with locks.hold(self.layout.keystore_lock, timeout=self.lock_timeout, what="the keystore"):
            yield

    @contextmanager
    def lock_renewal(self, *, wait: bool = True) -> Iterator[None]:
        """``wait=False``: ``KeystoreLocked`` at once if another run holds it."""
        timeout = self.lock_timeout if wait else 0.0
        with locks.hold(self.layout.renew_lock, timeout=timeout, what="certman renew"):
            yield

    # -- accounts ------------------------------------------------------------------------

    def load_account(self, ca: str) -> tuple[bytes, AccountRecord] | None:
        key_path, path = self.layout.account_key(ca), self.layout.account_file(ca)
        try:
            key_pem = key_path.read_bytes()
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            where = key_path if getattr(exc, "filename", None) == str(key_path) else path
            raise KeystoreError(f"account file {where} is unreadable: {exc}", ACCOUNT_HINT) from exc
        return key_pem, AccountRecord.from_json(data, path)

    def save_account(self, ca: str, key_pem: bytes, record: AccountRecord) -> None:
        files.ensure_dir(self.layout.account_dir(ca))
        files.write_file(self.layout.account_key(ca), key_pem, SECRET_MODE)
        files.write_file(self.layout.account_file(ca), index.dump_json(record.to_json()), SECRET_MODE)

    def account_cas(self) -> list[str]:
        entries = files.list_dir(self.layout.accounts)
        return sorted(e for e in entries if self.layout.account_file(e).exists())

    def save_pending_account_key(self, ca: str, key_pem: bytes | None) -> None:
        path = self.layout.pending_account_key(ca)
        if key_pem is None:
            files.remove(path)
        else:
            files.write_file(path, key_pem, SECRET_MODE)

    def load_pending_account_key(self, ca: str) -> bytes | None:
        path = self.layout.pending_account_key(ca)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise files.storage_error(exc, path, "reading") from exc

    def archive_account(self, ca: str, stamp: str) -> Path | str:
        """Move an account out of use into ``archive/accounts/<ca>-<stamp>``."""
        return files.move_to_archive(self.layout.account_dir(ca), self.layout.archive / "accounts", f"{ca}-{stamp}")

    # -- certificates --------------------------------------------------------------------

    def read_index(self) -> dict[str, IndexEntry]:
        return index.read(self.layout)

    def read_quiet(self) -> dict[str, QuietView] | None:
        """``index.read_quiet``: the few fields of every entry a no-op renew reads."""
        return index.read_quiet(self.layout)

    def names(self) -> list[str]:
        return sorted(self.read_index())

    def has(self, name: str) -> bool:
        return self.layout.live_link(name).exists()

    def read_spec(self, name: str) -> CertSpec:
        path = self.layout.spec(name)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise UsageError(
                f"no certificate named {name!r} in {self.root}", "see `certman list` for the names"
            ) from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            # certman wrote it: one that does not parse is a damaged keystore, not bad input.
            raise KeystoreError(f"spec file {path} is unreadable: {exc}", SPEC_HINT) from exc
        return CertSpec.from_dict(data, str(path))

    def write_spec(self, spec: CertSpec) -> None:
        files.write_file(self.layout.spec(spec.name), index.spec_bytes(spec), SECRET_MODE)
        with self.lock_keystore():
            index.follow_spec(self.layout, spec.name, spec.renew_before_days)

    def read_state(self, name: str) -> RenewalState:
        return self.read_states([name])[name]

    def read_states(self, names: list[str]) -> dict[str, RenewalState]:
        return state_files.read(self.layout, names)

    def write_state(self, name: str, state: RenewalState) -> None:
        files.ensure_dir(self.layout.cert_dir(name))
        data = index.dump_json(state.to_json())
        if name in self._undigested:
            files.write_file(self.layout.state(name), data, SECRET_MODE)
            return
        # The digest goes first, and the keystore lock stays held across the state write,
        # so neither a crash nor a renew run setting digests can pair it with the new state.
        with self.lock_keystore():
            digests.drop(self.layout, [name])
            files.write_file(self.layout.state(name), data, SECRET_MODE)

    @contextmanager
    def digests_dropped(self, names: list[str]) -> Iterator[None]:
        """Drop the renewal digests of ``names`` in one index write, so that ``write_state``
        writes their states without touching the index until the block ends. The caller
        holds ``lock_renewal`` for the block (so no run sets one meanwhile)."""
        with self.lock_keystore():
            digests.drop(self.layout, names)
        self._undigested.update(names)
        try:
            yield
        finally:
            self._undigested.difference_update(names)

    def note_renewal(self, names: list[str], digest_of: digests.DigestOf) -> None:
        """Copy into the index what ``list`` shows of each state of ``names``, and the
        renewal digest ``digest_of`` makes of it; states read under the keystore lock. The
        caller holds ``lock_renewal``. An unreadable state is left out (its run reports it)."""
        with self.lock_keystore():
            states = {}
            for name in names:
                try:
                    states[name] = self.read_state(name)
                except KeystoreError:
                    continue
            digests.note(self.layout, states, digest_of)

    def read_pending_order(self, name: str) -> pending.PendingOrder | None:
        return pending.read(self.layout, name)

    def write_pending_order(self, name: str, order: pending.PendingOrder) -> None:
        files.ensure_dir(self.layout.cert_dir(name))
        pending.write(self.layout, name, order)

    def clear_pending_order(self, name: str) -> None:
        if self.layout.cert_dir(name).is_dir():
            pending.clear(self.layout, name)

    def read_revocation(self, name: str, live_serial: str | None = None) -> RevocationMarker | None:
        path = self.layout.revoked(name)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"revocation marker {path} is unreadable: {exc}") from exc
        marker = RevocationMarker.from_json(raw, path)
        if live_serial is None:
            entry = self.read_index().get(name)
            live_serial = entry.serial if entry is not None else None
        return marker if marker.serial == live_serial else None

    def mark_revoked(self, name: str, marker: RevocationMarker) -> None:
        files.write_file(self.layout.revoked(name), index.dump_json(marker.to_json()), SECRET_MODE)
        # The index names the revoked serial too, so that a renew run over thousands of
        # certificates opens a marker only for those (a new version's entry drops it).
        with self.lock_keystore():
            index.mark(self.layout, {name: {"revoked_serial": marker.serial}})

    def mark_states(self, states: Mapping[str, RenewalState]) -> None:
        with self.lock_keystore():
            index.mark_states(self.layout, states)

    def versions(self, name: str) -> list[str]:
        return sorted(e for e in files.list_dir(self.layout.versions(name)) if e.isdigit())

    def live_version(self, name: str) -> str | None:
        return index.live_version(self.layout, name)

    def read_meta(self, name: str, version: str) -> VersionMeta | None:
        return index.read_meta(self.layout, name, version)

    def store_version(
        self, spec: CertSpec, key_pem: bytes, leaf_pem: bytes, chain_pem: bytes, meta: VersionMeta
    ) -> StoredVersion:
        """Store a complete new version, make it live, and record spec and index.

        The caller holds ``lock_cert(spec.name)``. Until the live link moves, the
        previous version stays live; a crash before that leaves only a temporary
        directory, which ``clean_leftovers`` removes.
        """
        layout, name = self.layout, spec.name
        files.ensure_dir(layout.cert_dir(name))
        self.clean_leftovers(name)
        existing = self.versions(name)
        version = version_name(int(existing[-1]) + 1 if existing else 1)
        meta = structs.replace(meta, version=version)
        fullchain = leaf_pem + chain_pem
        contents = {
            KEY_FILE: key_pem,
            CERT_FILE: leaf_pem,
            CHAIN_FILE: chain_pem,
            FULLCHAIN_FILE: fullchain,
            COMBINED_FILE: fullchain + key_pem,
            META_FILE: index.dump_json(meta.to_json()),
        }
        entry = index.entry_for(meta, tuple(i.value for i in spec.identifiers), spec.key_type, spec.server)
        # Stage everything that needs disk space first, then commit with renames only:
        # a full disk or an error leaves the keystore as it was, and a crash at any
        # point leaves live/<name> on a complete version (old or new).
        staged: list[Path] = []
        try:
            modes = {n: (data, FILE_MODES[n]) for n, data in contents.items()}
            staged.append(files.stage_version(layout.versions(name), modes, tag=name))
            staged.append(files.stage_file(layout.spec(name), index.spec_bytes(spec), SECRET_MODE, tag=name))
            staged.append(files.stage_symlink(layout.live_link(name), f"../certs/{name}/versions/{version}", tag=name))
            with self.lock_keystore():
                # A temporary in the root means a run died mid-commit, perhaps with live/
                # moved and the index not: repair before removing that sign of it.
                self._repair_index_locked(only_after_crash=True)
                # A journal line while the journal has room, else the whole index (``index.stage``).
                staged_entry = index.stage(layout, name, entry)
                staged.append(staged_entry.path)
                version_tmp, spec_tmp, link_tmp, index_tmp = staged
                files.commit(version_tmp, layout.versions(name) / version)
                # The spec goes before the link, so once live/ has moved, spec.toml is the
                # one it was issued for and a repair can rebuild the index entry from them.
                files.commit(spec_tmp, layout.spec(name))
                link, target = layout.live_link(name), f"../certs/{name}/versions/{version}"
                try:
                    files.commit(link_tmp, link)
                    index.commit(layout, staged_entry)
                except KeystoreError as exc:
                    if not past_commit.links_to(link, target):
                        raise
                    # Kept: a temporary in the root makes the next run bring the index in line.
                    staged.remove(index_tmp)
                    raise past_commit.already_live(exc, name, version, link, past_commit.INDEX_LEFT) from exc
                staged.clear()
        finally:
            for leftover in staged:
                files.discard(leftover)
        return StoredVersion(name, version, meta)

    def archive_cert(self, name: str, stamp: str) -> Path:
        """Take ``name`` out of service: its directory moves to ``archive/<name>-<stamp>``.

        The caller holds ``lock_cert(name)``. The move comes first, so a failure
        leaves everything as it was; from then on the live link dangles, so a proxy
        still configured with it fails loudly rather than serve an unmanaged
        certificate. Then the link and the index entry go.
        """
        if not self.layout.cert_dir(name).is_dir():
            raise UsageError(f"no certificate named {name!r} in {self.root}", "see `certman list` for the names")
        target = files.move_to_archive(self.layout.cert_dir(name), self.layout.archive, f"{name}-{stamp}")
        files.remove(self.layout.live_link(name))
        with self.lock_keystore():
            index.write(self.layout, name, None)
        return target

    # -- the live/ links (this store only) -----------------------------------------------

    def live(self, name: str) -> LivePaths:
        return LivePaths(self.layout.live_link(name))

    def scan_live(self) -> LiveListing:
        """One listing of live/, for ``crashed`` and ``repair_live`` to share."""
        return live_links.scan(self.layout)

    def repair_live(self, names: Iterable[str], stamp: str, listing: LiveListing | None = None) -> list[LiveRepair]:
        """Put back each ``live/<name>`` of ``names`` that is a directory, a file or missing
        while the certificate has a version (see ``live_links``); return what was repaired.
        ``listing``: live/ as ``scan_live`` found it (each problem is checked again under its lock).

        Takes ``lock_cert(name)`` only where something is to repair, so the caller must
        not hold it. ``stamp`` names the archive entries; ``KeystoreError`` if one fails.
        """
        repairs: list[LiveRepair] = []
        indexed: dict[str, IndexEntry] | None = None
        for name in live_links.problems(self.layout, names, listing):
            # A certificate with no version yet has no link to put back: no lock needed.
            if not self.versions(name):
                continue
            with self.lock_cert(name):
                # Re-checked under the lock: a store in flight may have moved the link meanwhile.
                found = live_links.problem(self.layout, name)
                if found is None:
                    continue
                # Read once: a store of ``name`` since then also put its link back (seen above).
                if indexed is None:
                    indexed = self.read_index()
                entry = indexed.get(name)
                version = live_links.current_version(self.versions(name), entry.version if entry else None)
                if version is not None:
                    repairs.append(live_links.put_back(self.layout, name, found, version, stamp))
        return repairs

    def clean_leftovers(self, name: str) -> list[Path]:
        """Remove temporary files and directories a killed run left for ``name``, and bring
        its index entry in line with live/ if a run died between moving the link and the index."""
        removed = files.remove_leftovers(self.layout.versions(name))
        removed += files.remove_leftovers(self.layout.cert_dir(name))
        # live/ is shared: only this certificate's temporaries are ours to remove.
        removed += files.remove_leftovers(self.layout.live, tag=name)
        # Only a run that died between moving live/<name> and recording its entry leaves
        # them disagreeing, and it leaves a sign: otherwise no read of the whole index (O(N)).
        if live_links.may_have_crashed(self.layout):
            index.bring_in_line(self.layout, name, self.read_spec, self.lock_keystore)
        return removed

    def crashed(self, listing: LiveListing | None = None) -> bool:
        """Whether the index must be rebuilt from live/ (``live_links.crashed``; ``listing``:
        live/ as ``scan_live`` found it); cheap, so commands check on every start and repair only then."""
        return live_links.crashed(self.layout, listing)

    def repair_index(self) -> list[str]:
        """Rebuild every index entry that disagrees with live/; return the names repaired."""
        with self.lock_keystore():
            return self._repair_index_locked(only_after_crash=False)

    def _repair_index_locked(self, *, only_after_crash: bool) -> list[str]:
        return index.repair_locked(self.layout, self.read_spec, only_after_crash=only_after_crash)


# The interface guard: mypy checks here that FileKeystore keeps the contract.
_: type[Keystore] = FileKeystore
