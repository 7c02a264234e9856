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
from collections.abc import Mapping
from pathlib import Path

from ..errors import KeystoreError
from .layout import DIR_MODE, TMP_PREFIX


def storage_error(exc: OSError, path: Path, action: str) -> KeystoreError:
    """Turn an OSError into a one-line operator message that names the path."""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return KeystoreError(
            f"no space left while {action} {path}", "free disk space; the previous version is still live"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return KeystoreError(
            f"permission denied while {action} {path}",
            "run certman as the keystore's owner, or choose another --keystore",
        )
    if exc.errno == errno.ELOOP:
        return KeystoreError(
            f"refusing to follow a symlink at {path}", "remove the symlink; certman never writes through one"
        )
    return KeystoreError(f"cannot complete {action} {path}: {exc.strerror}")


def check_safe_dir(path: Path) -> None:
    """Refuse a directory that is a symlink, writable by others, or owned by someone else."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise storage_error(exc, path, "inspecting") from exc
    if stat.S_ISLNK(st.st_mode):
        raise KeystoreError(f"refusing to use {path}: it is a symlink", "point --keystore at the real directory")
    if not stat.S_ISDIR(st.st_mode):
        raise KeystoreError(f"refusing to use {path}: it is not a directory")
    if st.st_uid != os.geteuid():
        raise KeystoreError(
            f"refusing to use {path}: owned by uid {st.st_uid}, not by uid {os.geteuid()}",
            "chown the keystore to the user that runs certman",
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise KeystoreError(
            f"refusing to use {path}: it is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})",
            f"chmod 700 {path}",
        )


def ensure_dir(path: Path) -> None:
    """Create ``path`` (and parents) 0700 whatever the umask; check it if it exists.

    Idempotent under concurrency: any number of threads or processes may create
    the same directory, or directories sharing a missing parent, at once; each
    returns once the directory exists and is safe.
    """
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
    os.chmod(path, DIR_MODE, follow_symlinks=False)
    fsync_dir(path.parent)


def _cannot_create(exc: OSError, path: Path) -> KeystoreError:
    error = storage_error(exc, path, "creating")
    if error.hint is None:
        error.hint = "choose a --keystore (or keystore in certman.toml) on a writable local file system"
    return error


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_file(dir_fd: int, name: str, data: bytes, mode: int) -> None:
    # The mode is set on the empty file before the first byte is written, so a
    # key is never readable by others, not even for an instant, whatever the umask.
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
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


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` atomically with ``data``; the old content stays until the rename."""
    tmp = _tmp_name()
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise storage_error(exc, path.parent, "opening") from exc
    try:
        try:
            _create_file(dir_fd, tmp, data, mode)
            os.rename(tmp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.fsync(dir_fd)
        except OSError as exc:
            _unlink_quietly(tmp, dir_fd)
            raise storage_error(exc, path, "writing") from exc
    finally:
        os.close(dir_fd)


def stage_version(versions_dir: Path, files: Mapping[str, tuple[bytes, int]], *, tag: str = "") -> Path:
    """Write ``files`` (name -> (bytes, mode)) complete and fsynced into a temporary directory."""
    ensure_dir(versions_dir)
    tmp = versions_dir / _tmp_name(tag)
    try:
        os.mkdir(tmp, DIR_MODE)
        os.chmod(tmp, DIR_MODE)
        dir_fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            for name, (data, mode) in files.items():
                _create_file(dir_fd, name, data, mode)
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise storage_error(exc, versions_dir, "writing a new version in") from exc
    return tmp


def stage_file(path: Path, data: bytes, mode: int, *, tag: str = "") -> Path:
    """Write ``data`` complete and fsynced to a temporary file beside ``path``."""
    tmp = path.parent / _tmp_name(tag)
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise storage_error(exc, path.parent, "opening") from exc
    try:
        _create_file(dir_fd, tmp.name, data, mode)
    except OSError as exc:
        _unlink_quietly(tmp.name, dir_fd)
        raise storage_error(exc, path, "writing") from exc
    finally:
        os.close(dir_fd)
    return tmp


def stage_symlink(link: Path, target: str, *, tag: str = "") -> Path:
    """A fresh symlink to ``target`` beside ``link``, ready to be renamed over it."""
    ensure_dir(link.parent)
    tmp = link.parent / _tmp_name(tag)
    try:
        os.symlink(target, tmp)
    except OSError as exc:
        raise storage_error(exc, link, "switching") from exc
    return tmp


def commit(staged: Path, final: Path) -> None:
    """Move a staged entry into place with one rename(2): readers see the old or the new, never none."""
    try:
        os.rename(staged, final)
        fsync_dir(final.parent)
    except OSError as exc:
        raise storage_error(exc, final, "moving into place") from exc


def move_to_archive(source: Path, archive_dir: Path, entry: str) -> Path:
    """Move ``source`` (a file or a directory) to ``archive_dir/entry`` in one rename; return the new path.

    ``KeystoreError`` if that entry exists already or the move fails.
    """
    ensure_dir(archive_dir)
    target = archive_dir / entry
    if os.path.lexists(target):
        raise KeystoreError(f"archive entry {target} already exists", "retry in a second")
    try:
        os.rename(source, target)
        fsync_dir(source.parent)
        fsync_dir(archive_dir)
    except OSError as exc:
        raise storage_error(exc, source, "archiving") from exc
    return target


def discard(staged: Path) -> None:
    """Remove a staged entry that will not be committed (it may be gone already)."""
    if staged.is_dir() and not staged.is_symlink():
        shutil.rmtree(staged, ignore_errors=True)
    else:
        _unlink_quietly(str(staged), None)


def remove_leftovers(directory: Path, *, tag: str | None = None) -> list[Path]:
    """Remove temporary entries a killed run left behind in ``directory`` (only ``tag``'s, if given)."""
    prefix = TMP_PREFIX if tag is None else f"{TMP_PREFIX}{tag}~"
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if entry.name.startswith(prefix):
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path, ignore_errors=True)
            else:
                _unlink_quietly(entry.path, None)
            removed.append(path)
    return removed


def _unlink_quietly(name: str, dir_fd: int | None) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass
