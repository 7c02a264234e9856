"""Crash-safe file operations: create with the final mode, fsync, rename, fsync the directory.

A reader of ``live/<name>/`` must never see a half-written file or a key that does
not match its certificate. So a version is written complete into a temporary
directory, renamed into place in one step, and only then does ``live/<name>`` move,
by ``rename(2)`` of a fresh symlink over the old one.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ..errors import KeystoreError
from .layout import DIR_MODE, TMP_PREFIX
from .safety import check_safe_dir as check_safe_dir
from .safety import check_safe_stat
from .safety import storage_error as storage_error

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


# Keystore roots this process uses (FileKeystore claims its own). Below a root, every
# directory certman writes in is reached from the root one component at a time with
# O_NOFOLLOW, so a symlink planted anywhere under it (certs/, certs/<name>/versions/)
# is refused instead of followed; above it, symlinks are the operator's business.
_roots: set[Path] = set()


def claim_root(root: Path) -> None:
    """Walk every later write under ``root`` (absolute, already checked) from ``root`` itself."""
    _roots.add(root)


def _root_of(path: Path) -> Path | None:
    # Compared by parts (cached on each Path), not `r in path.parents`: that builds a Path per
    # ancestor, and every keystore write asks this several times.
    parts = path.parts
    found = [r for r in _roots if parts[: len(r.parts)] == r.parts]
    return max(found, key=lambda r: len(r.parts)) if found else None


def open_dir(path: Path, *, create: bool = False) -> int:
    """A descriptor of directory ``path`` (the caller closes it); ``create`` makes missing ones 0700.

    Under a claimed root, no component below the root may be a symlink; ``KeystoreError``
    (exit 3) naming the component if one is, and naming the path on any other error.
    """
    root = _root_of(path)
    if root is None:
        if create:
            ensure_dir(path)
        try:
            return os.open(path, _DIR_FLAGS)
        except OSError as exc:
            raise storage_error(exc, path, "opening") from exc
    try:
        fd = os.open(root, _DIR_FLAGS)
    except OSError as exc:
        raise storage_error(exc, root, "opening") from exc
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        try:
            child = _open_child(fd, part, current, create)
        finally:
            os.close(fd)
        fd = child
    return fd


def _open_child(parent_fd: int, part: str, path: Path, create: bool) -> int:
    created = False
    try:
        try:
            fd = os.open(part, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise
            try:
                os.mkdir(part, DIR_MODE, dir_fd=parent_fd)
                created = True
            except FileExistsError:
                pass  # another run made it a moment ago
            fd = os.open(part, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink(parent_fd, part):
            raise KeystoreError(
                f"refusing to use {path}: it is a symlink",
                "certman writes under the keystore only through real directories; replace it with one",
            ) from None
        raise storage_error(exc, path, "opening") from exc
    try:
        if created:
            # Whatever the umask; then made durable in its parent.
            os.fchmod(fd, DIR_MODE)
            os.fsync(parent_fd)
        else:
            check_safe_stat(os.fstat(fd), path)
    except OSError as exc:
        os.close(fd)
        raise storage_error(exc, path, "creating") from exc
    except KeystoreError:
        os.close(fd)
        raise
    return fd


def _is_symlink(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


@contextmanager
def opened_dir(path: Path, *, create: bool = False) -> Iterator[int]:
    """``open_dir`` as a context manager."""
    fd = open_dir(path, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def ensure_dir(path: Path) -> None:
    """Create ``path`` (and parents) 0700 whatever the umask; check it if it exists.

    Idempotent under concurrency: any number of threads or processes may create
    the same directory, or directories sharing a missing parent, at once; each
    returns once the directory exists and is safe. Under a claimed root it is
    reached through ``open_dir``, so no component below the root may be a symlink.
    """
    if _root_of(path) not in (None, path):
        os.close(open_dir(path, create=True))
        return
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        check_safe_dir(path)
        return
    except FileNotFoundError as exc:
        if path.parent == path:
            raise _cannot_create(exc, path) from exc
        # The parent is missing, or another run created it a moment ago. Ensure it
        # (existing parents outside the keystore, such as /tmp, are not ours to
        # check), then try exactly once more: some file systems (/proc, /sys) answer
        # ENOENT although the parent exists, and retrying there would never end.
        if not os.path.lexists(path.parent):
            ensure_dir(path.parent)
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            check_safe_dir(path)
            return
        except OSError as again:
            raise _cannot_create(again, path) from again
    except OSError as exc:
        raise storage_error(exc, path, "creating") from exc
    try:
        os.chmod(path, DIR_MODE, follow_symlinks=False)
    except OSError as exc:
        raise storage_error(exc, path, "creating") from exc
    fsync_dir(path.parent)


def _cannot_create(exc: OSError, path: Path) -> KeystoreError:
    error = storage_error(exc, path, "creating")
    if error.hint is None:
        error.hint = "choose a --keystore (or keystore in certman.toml) on a writable local file system"
    return error


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` durable; ``KeystoreError`` naming it if that fails."""
    with opened_dir(path) as fd:
        try:
            os.fsync(fd)
        except OSError as exc:
            raise storage_error(exc, path, "syncing") from exc


def _create_file(dir_fd: int, name: str, data: bytes | Iterable[bytes], mode: int) -> None:
    # The mode is set on the empty file before the first byte is written, so a
    # key is never readable by others, not even for an instant, whatever the umask.
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)
        for chunk in [data] if isinstance(data, bytes) else data:
            view = memoryview(chunk)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_name(tag: str = "") -> str:
    # A tag (the certificate name) lets one certificate's cleanup leave the
    # in-flight temporaries of another certificate alone; '~' is never in a name.
    return f"{TMP_PREFIX}{tag}~{secrets.token_hex(6)}" if tag else f"{TMP_PREFIX}{secrets.token_hex(6)}"


def write_file(path: Path, data: bytes | Iterable[bytes], mode: int) -> None:
    """Replace ``path`` atomically with ``data`` (or its chunks, written as they come); the
    old content stays until the rename.

    ``KeystoreError`` naming ``path`` on any failure, with no temporary left behind.
    """
    tmp = _tmp_name()
    with opened_dir(path.parent) as dir_fd:
        try:
            _create_file(dir_fd, tmp, data, mode)
            os.rename(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.fsync(dir_fd)
        except OSError as exc:
            _unlink_quietly(tmp, dir_fd)
            raise storage_error(exc, path, "writing") from exc


def stage_version(versions_dir: Path, files: Mapping[str, tuple[bytes, int]], *, tag: str = "") -> Path:
    """Write ``files`` (name -> (bytes, mode)) complete and fsynced into a temporary directory."""
    tmp = _tmp_name(tag)
    with opened_dir(versions_dir, create=True) as parent_fd:
        try:
            os.mkdir(tmp, DIR_MODE, dir_fd=parent_fd)
            dir_fd = os.open(tmp, _DIR_FLAGS, dir_fd=parent_fd)
            try:
                os.fchmod(dir_fd, DIR_MODE)
                for name, (data, mode) in files.items():
                    _create_file(dir_fd, name, data, mode)
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True, dir_fd=parent_fd)
            raise storage_error(exc, versions_dir, "writing a new version in") from exc
    return versions_dir / tmp


def stage_file(path: Path, data: bytes, mode: int, *, tag: str = "") -> Path:
    """Write ``data`` complete and fsynced to a temporary file beside ``path``."""
    tmp = _tmp_name(tag)
    with opened_dir(path.parent) as dir_fd:
        try:
            _create_file(dir_fd, tmp, data, mode)
        except OSError as exc:
            _unlink_quietly(tmp, dir_fd)
            raise storage_error(exc, path, "writing") from exc
    return path.parent / tmp


def stage_symlink(link: Path, target: str, *, tag: str = "") -> Path:
    """A fresh symlink to ``target`` beside ``link``, ready to be renamed over it."""
    tmp = _tmp_name(tag)
    with opened_dir(link.parent, create=True) as dir_fd:
        try:
            os.symlink(target, tmp, dir_fd=dir_fd)
        except OSError as exc:
            raise storage_error(exc, link, "switching") from exc
    return link.parent / tmp


def commit(staged: Path, final: Path) -> None:
    """Move a staged entry into place with one rename(2): readers see the old or the new, never none.

    ``staged`` lies beside ``final`` (the ``stage_*`` functions put it there).
    """
    with opened_dir(final.parent) as dir_fd:
        try:
            os.rename(staged.name, final.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.fsync(dir_fd)
        except OSError as exc:
            raise storage_error(exc, final, "moving into place") from exc


def move_to_archive(source: Path, archive_dir: Path, entry: str) -> Path:
    """Move ``source`` (a file or a directory) to ``archive_dir/entry`` in one rename; return the new path.

    ``KeystoreError`` if that entry exists already or the move fails.
    """
    target = archive_dir / entry
    with opened_dir(archive_dir, create=True) as archive_fd, opened_dir(source.parent) as source_fd:
        try:
            os.lstat(entry, dir_fd=archive_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise storage_error(exc, target, "inspecting") from exc
        else:
            raise KeystoreError(f"archive entry {target} already exists", "retry in a second")
        try:
            os.rename(source.name, entry, src_dir_fd=source_fd, dst_dir_fd=archive_fd)
            os.fsync(source_fd)
            os.fsync(archive_fd)
        except OSError as exc:
            raise storage_error(exc, source, "archiving") from exc
    return target


def remove(path: Path) -> None:
    """Unlink the file or symlink ``path`` (gone already is fine); ``KeystoreError`` naming it otherwise."""
    with opened_dir(path.parent) as dir_fd:
        try:
            os.unlink(path.name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise storage_error(exc, path, "removing") from exc


def discard(staged: Path) -> None:
    """Remove a staged entry that will not be committed (it may be gone already)."""
    try:
        with opened_dir(staged.parent) as dir_fd:
            _remove_entry(dir_fd, staged.name)
    except (KeystoreError, OSError):
        pass  # a temporary left behind is removed by the next run's clean_leftovers


def remove_leftovers(directory: Path, *, tag: str | None = None) -> list[Path]:
    """Remove temporary entries a killed run left behind in ``directory`` (only ``tag``'s, if given)."""
    prefix = TMP_PREFIX if tag is None else f"{TMP_PREFIX}{tag}~"
    removed: list[Path] = []
    try:
        dir_fd = open_dir(directory)
    except KeystoreError as exc:
        # Decided by why the open failed, not by looking again: a neighbour may create
        # the directory (live/ is shared) between the failed open and a second look.
        if isinstance(exc.__cause__, FileNotFoundError):
            return removed
        raise
    try:
        try:
            names = [e.name for e in os.scandir(dir_fd) if e.name.startswith(prefix)]
        except OSError as exc:
            raise storage_error(exc, directory, "listing") from exc
        for name in names:
            _remove_entry(dir_fd, name)
            removed.append(directory / name)
    finally:
        os.close(dir_fd)
    return removed


def _remove_entry(dir_fd: int, name: str) -> None:
    try:
        is_dir = stat.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return
    if is_dir:
        shutil.rmtree(name, ignore_errors=True, dir_fd=dir_fd)
    else:
        _unlink_quietly(name, dir_fd)


def list_dir(path: Path) -> list[str]:
    """The entry names of directory ``path``; ``[]`` if it is missing, ``KeystoreError`` naming it otherwise."""
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise storage_error(exc, path, "listing") from exc


def _unlink_quietly(name: str, dir_fd: int | None) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass
