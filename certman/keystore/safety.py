"""Whether a keystore directory is safe to use, and OSErrors as operator messages naming the path."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import KeystoreError


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
    check_safe_stat(st, path)


def check_safe_stat(st: os.stat_result, path: Path) -> None:
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
