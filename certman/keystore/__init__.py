"""The keystore: accounts, certificate specs, immutable versions, the live links and an index.

``FileKeystore`` is the only implementation today. The rest of certman uses just
the methods below, so a shared backend for fleets can replace it later.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import CertSpec
from ..errors import ConfigError, KeystoreError, UsageError
from ..names import check_cert_name
from . import files, locks, pending
from .layout import (
    CERT_FILE,
    CHAIN_FILE,
    COMBINED_FILE,
    FILE_MODES,
    FULLCHAIN_FILE,
    KEY_FILE,
    META_FILE,
    SECRET_MODE,
    TMP_PREFIX,
    Layout,
    ca_id,
    version_name,
)

__all__ = ["FileKeystore", "LivePaths", "PendingOrder", "StoredVersion", "ca_id"]

PendingOrder = pending.PendingOrder

INDEX_FORMAT = 1
_STATE_HINT = "fix or remove it: it holds renewal bookkeeping (retries, ARI, pending deploys), not the certificate"


@dataclass(frozen=True)
class LivePaths:
    """The stable paths a proxy is configured with."""

    directory: Path

    @property
    def privkey(self) -> Path:
        return self.directory / KEY_FILE

    @property
    def cert(self) -> Path:
        return self.directory / CERT_FILE

    @property
    def chain(self) -> Path:
        return self.directory / CHAIN_FILE

    @property
    def fullchain(self) -> Path:
        return self.directory / FULLCHAIN_FILE

    @property
    def combined(self) -> Path:
        return self.directory / COMBINED_FILE


@dataclass(frozen=True)
class StoredVersion:
    name: str
    version: str
    path: Path
    meta: Mapping[str, Any]


def _dump_json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


class FileKeystore:
    """A keystore directory. Creating one makes the root 0700 and checks it is safe to use."""

    def __init__(self, root: Path | str, *, lock_timeout: float = 30.0) -> None:
        self.layout = Layout(Path(root).absolute())
        self.lock_timeout = lock_timeout
        files.ensure_dir(self.layout.root)

    @property
    def root(self) -> Path:
        return self.layout.root

    # -- locks ---------------------------------------------------------------------------

    @contextmanager
    def lock_cert(self, name: str) -> Iterator[None]:
        with locks.hold(self.layout.cert_lock(name), timeout=self.lock_timeout, what=f"certificate {name}"):
            yield

    @contextmanager
    def lock_keystore(self) -> Iterator[None]:
        with locks.hold(self.layout.keystore_lock, timeout=self.lock_timeout, what="the keystore"):
            yield

    # -- accounts ------------------------------------------------------------------------

    def load_account(self, ca: str) -> tuple[bytes, dict[str, Any]] | None:
        directory = self.layout.account_dir(ca)
        try:
            key_pem = (directory / "key.pem").read_bytes()
            data = json.loads((directory / "account.json").read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"account for {ca} in {directory} is unreadable: {exc}") from exc
        return key_pem, data

    def save_account(self, ca: str, key_pem: bytes, data: Mapping[str, Any]) -> None:
        directory = self.layout.account_dir(ca)
        files.ensure_dir(directory)
        files.write_file(directory / "key.pem", key_pem, SECRET_MODE)
        files.write_file(directory / "account.json", _dump_json(dict(data)), SECRET_MODE)

    def account_cas(self) -> list[str]:
        """The CA ids that have a stored account."""
        try:
            return sorted(
                e for e in os.listdir(self.layout.accounts) if (self.layout.account_dir(e) / "account.json").exists()
            )
        except FileNotFoundError:
            return []

    def save_pending_account_key(self, ca: str, key_pem: bytes | None) -> None:
        """Keep a rollover's new key on disk before the CA switches to it (None: forget it).

        If the run dies between the CA's answer and ``save_account``, the key the CA
        now expects is still here for the operator to recover.
        """
        path = self.layout.pending_account_key(ca)
        if key_pem is None:
            path.unlink(missing_ok=True)
        else:
            files.write_file(path, key_pem, SECRET_MODE)

    def load_pending_account_key(self, ca: str) -> bytes | None:
        try:
            return self.layout.pending_account_key(ca).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise files.storage_error(exc, self.layout.pending_account_key(ca), "reading") from exc

    def archive_account(self, ca: str, stamp: str) -> Path:
        """Move an account out of use into ``archive/accounts/<ca>-<stamp>``."""
        return self._move_to_archive(self.layout.account_dir(ca), self.layout.archive / "accounts", f"{ca}-{stamp}")

    # -- certificates --------------------------------------------------------------------

    def read_index(self) -> dict[str, dict[str, Any]]:
        """Per certificate name, the facts of its live version (no PEM parsing needed)."""
        certs = self._index_entries()
        path = self.layout.index
        for name, entry in certs.items():
            _check_index_entry(path, name, entry)
        return certs

    def _index_entries(self) -> dict[str, Any]:
        """The index's entries, checked only for shape (``read_index`` checks each one)."""
        try:
            raw = json.loads(self.layout.index.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KeystoreError(
                f"index {self.layout.index} is unreadable: {exc}",
                "run `certman doctor`; the certificates themselves are intact",
            ) from exc
        certs = raw.get("certificates", {}) if isinstance(raw, dict) else None
        if not isinstance(certs, dict):
            raise KeystoreError(
                f'index {self.layout.index} is malformed: no "certificates" object',
                "run `certman doctor`; the certificates themselves are intact",
            )
        return certs

    def names(self) -> list[str]:
        return sorted(self.read_index())

    def has(self, name: str) -> bool:
        return self.layout.live_link(name).exists()

    def read_revocation(self, name: str, live_serial: str | None = None) -> dict[str, Any] | None:
        """The revocation marker of ``name``'s live certificate (serial, reason, revoked_at), else None.

        The marker names the serial it was written for, so issuing a new version
        lifts it without anyone having to remember to delete it.
        """
        try:
            marker = dict(json.loads(self.layout.revoked(name).read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"revocation marker {self.layout.revoked(name)} is unreadable: {exc}") from exc
        if live_serial is None:
            live_serial = self.read_index().get(name, {}).get("serial")
        return marker if marker.get("serial") == live_serial else None

    def mark_revoked(self, name: str, data: Mapping[str, Any]) -> None:
        files.write_file(self.layout.revoked(name), _dump_json(dict(data)), SECRET_MODE)
        # The index names the revoked serial too, so that a renew run over thousands of
        # certificates opens a marker only for those (a new version's entry drops it).
        with self.lock_keystore():
            entry = self.read_index().get(name)
            if entry is not None:
                files.write_file(
                    self.layout.index,
                    self._index_bytes(name, {**entry, "revoked_serial": data.get("serial")}),
                    SECRET_MODE,
                )

    def archive_cert(self, name: str, stamp: str) -> Path:
        """Take ``name`` out of service: its directory moves to ``archive/<name>-<stamp>``.

        The caller holds ``lock_cert(name)``. The move comes first, so a failure
        leaves everything as it was; from then on the live link dangles, so a proxy
        still configured with it fails loudly rather than serve an unmanaged
        certificate. Then the link and the index entry go.
        """
        if not self.layout.cert_dir(name).is_dir():
            raise UsageError(f"no certificate named {name!r} in {self.root}", "see `certman list` for the names")
        target = self._move_to_archive(self.layout.cert_dir(name), self.layout.archive, f"{name}-{stamp}")
        link = self.layout.live_link(name)
        try:
            link.unlink(missing_ok=True)
        except OSError as exc:
            raise files.storage_error(exc, link, "removing") from exc
        self._update_index(name, None)
        return target

    def _move_to_archive(self, source: Path, archive_dir: Path, entry: str) -> Path:
        files.ensure_dir(archive_dir)
        target = archive_dir / entry
        if target.exists():
            raise KeystoreError(f"archive entry {target} already exists", "retry in a second")
        try:
            os.rename(source, target)
            files.fsync_dir(source.parent)
            files.fsync_dir(archive_dir)
        except OSError as exc:
            raise files.storage_error(exc, source, "archiving") from exc
        return target

    def write_spec(self, spec: CertSpec) -> None:
        """Rewrite ``spec.toml`` alone (the caller holds ``lock_cert(spec.name)``)."""
        import tomli_w  # deferred: only writers need it

        files.write_file(self.layout.spec(spec.name), tomli_w.dumps(spec.storable().to_dict()).encode(), SECRET_MODE)

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
            raise ConfigError(f"{path} is unreadable: {exc}") from exc
        return CertSpec.from_dict(data, str(path))

    def read_state(self, name: str) -> dict[str, Any]:
        path = self.layout.state(name)
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"state file {path} is unreadable: {exc}", _STATE_HINT) from exc
        return _state_object(state, path)

    def read_states(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """``read_state`` for many certificates at once: a renew run over 10,000 names
        reads every state file, so this skips the per-name Path building."""
        certs = str(self.layout.certs)
        states: dict[str, dict[str, Any]] = {}
        for name in names:
            path = os.path.join(certs, check_cert_name(name), "state.json")
            try:
                with open(path, "rb") as fh:
                    state = json.loads(fh.read())
            except FileNotFoundError:
                states[name] = {}
                continue
            except (OSError, ValueError) as exc:
                raise KeystoreError(f"state file {path} is unreadable: {exc}", _STATE_HINT) from exc
            states[name] = _state_object(state, path)
        return states

    def write_state(self, name: str, state: Mapping[str, Any]) -> None:
        files.ensure_dir(self.layout.cert_dir(name))
        files.write_file(self.layout.state(name), _dump_json(dict(state)), SECRET_MODE)

    def read_pending_order(self, name: str) -> pending.PendingOrder | None:
        """The unfinished order of ``name`` a previous run left to continue, if any."""
        return pending.read(self.layout.cert_dir(name))

    def write_pending_order(self, name: str, order: pending.PendingOrder) -> None:
        files.ensure_dir(self.layout.cert_dir(name))
        pending.write(self.layout.cert_dir(name), order)

    def clear_pending_order(self, name: str) -> None:
        if self.layout.cert_dir(name).is_dir():
            pending.clear(self.layout.cert_dir(name))

    def live(self, name: str) -> LivePaths:
        return LivePaths(self.layout.live_link(name))

    def live_version(self, name: str) -> str | None:
        try:
            return Path(os.readlink(self.layout.live_link(name))).name
        except FileNotFoundError:
            return None

    def versions(self, name: str) -> list[str]:
        try:
            return sorted(e for e in os.listdir(self.layout.versions(name)) if e.isdigit())
        except FileNotFoundError:
            return []

    def store_version(
        self, spec: CertSpec, key_pem: bytes, leaf_pem: bytes, chain_pem: bytes, meta: Mapping[str, Any]
    ) -> StoredVersion:
        """Store a complete new version, make it live, and record spec and index.

        The caller holds ``lock_cert(spec.name)``. Until the live link moves, the
        previous version stays live; a crash before that leaves only a temporary
        directory, which ``clean_leftovers`` removes.
        """
        layout = self.layout
        files.ensure_dir(layout.cert_dir(spec.name))
        self.clean_leftovers(spec.name)
        existing = self.versions(spec.name)
        number = int(existing[-1]) + 1 if existing else 1
        version = version_name(number)
        meta = {**meta, "version": version}
        fullchain = leaf_pem + chain_pem
        contents = {
            KEY_FILE: key_pem,
            CERT_FILE: leaf_pem,
            CHAIN_FILE: chain_pem,
            FULLCHAIN_FILE: fullchain,
            COMBINED_FILE: fullchain + key_pem,
            META_FILE: _dump_json(meta),
        }
        import tomli_w  # deferred: only writers need it

        # Stage everything that needs disk space first, then commit with renames only:
        # a full disk or an error leaves the keystore as it was, and a crash at any
        # point leaves live/<name> on a complete version (old or new).
        name = spec.name
        staged: list[Path] = []
        try:
            staged.append(
                files.stage_version(
                    layout.versions(name), {n: (data, FILE_MODES[n]) for n, data in contents.items()}, tag=name
                )
            )
            staged.append(
                files.stage_file(
                    layout.spec(name), tomli_w.dumps(spec.storable().to_dict()).encode(), SECRET_MODE, tag=name
                )
            )
            staged.append(files.stage_symlink(layout.live_link(name), f"../certs/{name}/versions/{version}", tag=name))
            with self.lock_keystore():
                # A temporary in the root means a run died mid-commit, perhaps with live/
                # moved and the index not: repair before removing that sign of it.
                self._repair_index_locked(only_after_crash=True)
                staged.append(
                    files.stage_file(
                        layout.index,
                        self._index_bytes(
                            name,
                            {
                                **meta,
                                "identifiers": [i.value for i in spec.identifiers],
                                "key_type": spec.key_type,
                                "server": spec.server,
                            },
                        ),
                        SECRET_MODE,
                    )
                )
                version_tmp, spec_tmp, link_tmp, index_tmp = staged
                path = layout.versions(name) / version
                files.commit(version_tmp, path)
                # The spec goes before the link, so once live/ has moved, spec.toml is the
                # one it was issued for and a repair can rebuild the index entry from them.
                files.commit(spec_tmp, layout.spec(name))
                files.commit(link_tmp, layout.live_link(name))
                files.commit(index_tmp, layout.index)
                staged.clear()
        finally:
            for leftover in staged:
                files.discard(leftover)
        return StoredVersion(name, version, path, meta)

    def _index_bytes(self, name: str, entry: Mapping[str, Any] | None) -> bytes:
        """The index with ``name``'s entry replaced (None: removed); the caller holds the keystore lock."""
        # Entries are kept as they are: writing one certificate's entry must not
        # depend on every other entry being well-formed.
        certs = self._index_entries()
        if entry is None:
            certs.pop(name, None)
        else:
            certs[name] = dict(entry)
        return _dump_json({"format": INDEX_FORMAT, "certificates": certs})

    def _update_index(self, name: str, entry: Mapping[str, Any] | None) -> None:
        with self.lock_keystore():
            files.write_file(self.layout.index, self._index_bytes(name, entry), SECRET_MODE)

    def clean_leftovers(self, name: str) -> list[Path]:
        """Remove temporary files and directories a killed run left for ``name``, and bring
        its index entry in line with live/ if a run died between moving the link and the index."""
        removed = files.remove_leftovers(self.layout.versions(name))
        removed += files.remove_leftovers(self.layout.cert_dir(name))
        # live/ is shared: only this certificate's temporaries are ours to remove.
        removed += files.remove_leftovers(self.layout.live, tag=name)
        if self._live_entry(name, self.read_index().get(name)) is not None:
            with self.lock_keystore():
                certs = self.read_index()
                entry = self._live_entry(name, certs.get(name))
                if entry is not None:
                    certs[name] = entry
                    self._write_index(certs)
        return removed

    def crashed(self) -> bool:
        """Whether a temporary lies in the root or live/: a run may have died mid-commit.

        Cheap (two directory listings), so commands can check on every start and pay
        for ``repair_index`` only after a crash.
        """
        for directory in (self.layout.root, self.layout.live):
            try:
                if any(e.startswith(TMP_PREFIX) for e in os.listdir(directory)):
                    return True
            except FileNotFoundError:
                pass
        return False

    def repair_index(self) -> list[str]:
        """Rebuild every index entry that disagrees with live/; return the names repaired."""
        with self.lock_keystore():
            return self._repair_index_locked(only_after_crash=False)

    def _repair_index_locked(self, *, only_after_crash: bool) -> list[str]:
        # Only runs holding the keystore lock stage files in the root, so under it every
        # temporary there is a dead run's; live/ temporaries may be another certificate's
        # store in flight, and stay for that certificate's clean_leftovers.
        if not files.remove_leftovers(self.layout.root) and only_after_crash:
            return []
        certs = self.read_index()
        try:
            linked = [e for e in os.listdir(self.layout.live) if not e.startswith(TMP_PREFIX)]
        except FileNotFoundError:
            linked = []
        repaired = []
        for name in sorted(set(certs) | set(linked)):
            entry = self._live_entry(name, certs.get(name))
            if entry is not None:
                certs[name] = entry
                repaired.append(name)
        if repaired:
            self._write_index(certs)
        return repaired

    def _live_entry(self, name: str, entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """``name``'s index entry rebuilt from the version live/<name> points at, or None
        when the index already agrees (or the link dangles: archived, nothing to list)."""
        version = self.live_version(name)
        if version is None or (entry is not None and entry.get("version") == version):
            return None
        from cryptography import x509  # deferred: only a repair parses a certificate

        from ..keys import CertFacts

        directory = self.layout.versions(name) / version
        try:
            meta = json.loads((directory / META_FILE).read_text())
            leaf = x509.load_pem_x509_certificate((directory / CERT_FILE).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise KeystoreError(
                f"live version {directory} of {name} is unreadable: {exc}", "run `certman doctor`"
            ) from exc
        spec = self.read_spec(name)
        # Identifiers from the certificate itself: the spec may have been edited since.
        return {
            **meta,
            "version": version,
            "identifiers": list(CertFacts.of(leaf).identifiers),
            "key_type": spec.key_type,
            "server": spec.server,
        }

    def _write_index(self, certs: Mapping[str, Any]) -> None:
        """Replace the whole index; the caller holds the keystore lock."""
        files.write_file(
            self.layout.index, _dump_json({"format": INDEX_FORMAT, "certificates": dict(certs)}), SECRET_MODE
        )


_INDEX_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def _check_index_entry(path: Path, name: str, entry: Any) -> None:
    """Refuse an index entry that list, renew and explain could not use."""
    if not isinstance(entry, dict):
        raise KeystoreError(f"index {path}: the entry of {name!r} is not an object", _index_hint(path, name))
    for key in ("not_before", "not_after"):
        value = entry.get(key)
        # The format utc_iso writes; fromisoformat then rejects impossible dates.
        try:
            if not isinstance(value, str) or not _INDEX_TIME.fullmatch(value):
                raise ValueError(value)
            datetime.datetime.fromisoformat(value)
        except ValueError:
            shown = "missing" if value is None else f"{value!r}, not a YYYY-MM-DDTHH:MM:SSZ time"
            raise KeystoreError(f"index {path}: {key} of {name!r} is {shown}", _index_hint(path, name)) from None


def _index_hint(path: Path, name: str) -> str:
    return (
        f"delete the {name!r} entry from {path}, then `certman issue --name {name} NAME...` "
        "rewrites it; the certificate files are intact"
    )


_STATE_TIMES = ("last_attempt", "last_success", "last_failure", "next_attempt", "retry_after")


def _state_object(state: Any, path: Path | str) -> dict[str, Any]:
    """The state as read, if its fields have the types renewal relies on.

    Checked here, once, so a hand-edited file fails its own certificate with a
    message naming it, instead of a TypeError somewhere in the middle of a batch.
    """
    # dict() of a JSON list would "work" for [[k, v]] and fail oddly otherwise.
    if not isinstance(state, dict):
        raise KeystoreError(f"state file {path} is malformed: not a JSON object", _STATE_HINT)
    failures = state.get("consecutive_failures")
    if failures is not None and (not isinstance(failures, int) or isinstance(failures, bool) or failures < 0):
        raise KeystoreError(f"state file {path} is malformed: consecutive_failures = {failures!r}", _STATE_HINT)
    for key in _STATE_TIMES:
        value = state.get(key)
        if value is None:
            continue
        try:
            datetime.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise KeystoreError(
                f"state file {path} is malformed: {key} = {value!r} is not a time", _STATE_HINT
            ) from None
    for key in ("ari", "deploy"):
        if not isinstance(state.get(key) or {}, dict):
            raise KeystoreError(f"state file {path} is malformed: {key} is not an object", _STATE_HINT)
    return state


def utc_iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
