"""HTTP-01 through an existing web server's document root."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ...errors import SolverError
from ...plugins.settings import setting, settings_from
from .. import ChallengeBatch
from . import check_token

# The web server must read these files; they hold no secret (the CA publishes them).
PUBLIC_FILE_MODE = 0o644
PUBLIC_DIR_MODE = 0o755
# A directory another run removes between our mkdir and open is made again, a few times at most.
_CREATE_ATTEMPTS = 5
_SUBDIRS = (".well-known", "acme-challenge")


@dataclass(frozen=True)
class WebrootSettings:
    path: Path = setting(help="Document root the web server serves for these names, e.g. /var/www/html.")


@dataclass
class _Written:
    """What present() made, with the open directory handles cleanup() removes it through."""

    files: list[str] = field(default_factory=list)
    # The challenge directory the files were created in, held open until cleanup.
    dir_fd: int | None = None
    # (handle of the parent, name) of each directory present() created, outermost first.
    created_dirs: list[tuple[int, str]] = field(default_factory=list)

    def close(self) -> None:
        for fd in [self.dir_fd, *(parent for parent, _ in self.created_dirs)]:
            if fd is not None:
                os.close(fd)


class WebrootSolver:
    """Writes ``<webroot>/.well-known/acme-challenge/<token>`` and removes it afterwards.

    Every step opens relative to the previous directory with O_NOFOLLOW, so a symlink
    planted in the webroot (by the less trusted web user) is refused, never followed.
    Cleanup removes the files and directories through the handles they were created
    with, so a directory swapped for a symlink meanwhile redirects nothing.
    """

    challenge_type: ClassVar[str] = "http-01"
    settings_classes: ClassVar[tuple[type, ...]] = (WebrootSettings,)

    def __init__(self, settings: WebrootSettings) -> None:
        self.settings = settings
        self._written = _Written()

    @classmethod
    def from_options(cls, options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> WebrootSolver:
        """The solver a ``[[solver]]`` table describes; a missing or bad path is a ConfigError."""
        return cls(settings_from(WebrootSettings, options, plugin="webroot solver", env=env))

    def preflight(self) -> None:
        """Raise ``SolverError`` unless the webroot is a directory this user can write the challenge under."""
        root = self.settings.path
        if not root.is_dir():
            raise SolverError(
                f"webroot {root} does not exist or is not a directory",
                "create it, or pass the document root your web server serves for these names",
            )
        target = root.joinpath(*_SUBDIRS)
        deepest = next(p for p in (target, target.parent, root) if p.is_dir())
        if not os.access(deepest, os.W_OK | os.X_OK):
            raise SolverError(
                f"cannot write the challenge file under {root}: {deepest} is not writable",
                "make the webroot writable for the user running certman",
            )

    def present(self, batch: ChallengeBatch) -> None:
        root = self.settings.path
        if not root.is_dir():
            raise SolverError(
                f"webroot {root} does not exist or is not a directory",
                "create it, or pass the document root your web server serves for these names",
            )
        # Every token is checked before the first directory is created.
        names = [check_token(c.token) for c in batch]
        try:
            with _locked(root) as root_fd:
                self._write(root_fd, root, batch, names)
        except OSError as exc:
            raise SolverError(f"cannot open webroot {root}: {exc.strerror}") from exc

    def _write(self, root_fd: int, root: Path, batch: ChallengeBatch, names: list[str]) -> None:
        dir_fd = self._open_challenge_dir(root_fd, root)
        if self._written.dir_fd is None:
            self._written.dir_fd = dir_fd
        else:
            os.close(dir_fd)
            dir_fd = self._written.dir_fd
        try:
            for challenge, name in zip(batch, names, strict=True):
                try:
                    fd = os.open(
                        name,
                        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                        PUBLIC_FILE_MODE,
                        dir_fd=dir_fd,
                    )
                except FileExistsError:
                    os.unlink(name, dir_fd=dir_fd)
                    fd = os.open(
                        name,
                        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                        PUBLIC_FILE_MODE,
                        dir_fd=dir_fd,
                    )
                try:
                    os.fchmod(fd, PUBLIC_FILE_MODE)
                    os.write(fd, challenge.validation.encode())
                finally:
                    os.close(fd)
                self._written.files.append(name)
        except OSError as exc:
            raise SolverError(
                f"cannot write the challenge file under {root}: {exc.strerror}",
                "make the webroot writable for the user running certman",
            ) from exc

    def _open_challenge_dir(self, root_fd: int, root: Path) -> int:
        # A copy: closing it on the way down must not release the lock on root_fd.
        fd = os.dup(root_fd)
        path = root
        for part in _SUBDIRS:
            path = path / part
            try:
                child = self._make_public_dir(fd, part, path)
            except OSError as exc:
                os.close(fd)
                raise SolverError(
                    f"cannot prepare {path}: {exc.strerror}", "make the webroot writable for the user running certman"
                ) from exc
            except SolverError:
                os.close(fd)
                raise
            os.close(fd)
            fd = child
        return fd

    def _make_public_dir(self, parent_fd: int, part: str, path: Path) -> int:
        """Open ``part`` under ``parent_fd``, creating it world-readable if missing.

        Another solver on the same webroot (a parallel renew) may create it, or
        remove it in its cleanup, between our mkdir and open: then try again.
        """
        for _ in range(_CREATE_ATTEMPTS):
            created = False
            try:
                os.mkdir(part, PUBLIC_DIR_MODE, dir_fd=parent_fd)
                created = True
            except FileExistsError:
                try:
                    mode = os.lstat(part, dir_fd=parent_fd).st_mode
                except FileNotFoundError:
                    continue
                if stat.S_ISLNK(mode):
                    raise SolverError(
                        f"refusing to follow the symlink {path}",
                        "remove it; certman never writes through a symlink in the webroot",
                    ) from None
            except FileNotFoundError:
                continue
            try:
                fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
            except FileNotFoundError:
                continue
            if created:
                # World-readable whatever the umask: the web server must list and read it.
                os.fchmod(fd, PUBLIC_DIR_MODE)
                # A new open file description, not a dup: a dup of the root's would keep
                # its flock held after present() returns, and cleanup() would wait forever.
                parent = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent_fd)
                self._written.created_dirs.append((parent, part))
            return fd
        raise SolverError(
            f"cannot prepare {path}: it keeps disappearing",
            "something else removes it while certman writes there; check other ACME clients",
        )

    def cleanup(self, batch: ChallengeBatch) -> None:
        written, self._written = self._written, _Written()
        try:
            if written.files or written.created_dirs:
                with _locked(self.settings.path):
                    _remove(written)
        except OSError:
            pass  # the webroot itself is gone, and with it what we wrote
        finally:
            written.close()

    def wait_ready(self, batch: ChallengeBatch) -> None:
        return None


@contextmanager
def _locked(root: Path) -> Iterator[int]:
    """``root`` open and locked (flock): solvers sharing a webroot (a parallel renew) then
    create and remove the challenge directories one at a time, so none removes a
    directory another is about to write in."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _remove(written: _Written) -> None:
    """Unlink what ``written`` holds through its handles; what is gone already is fine."""
    for name in written.files:
        try:
            os.unlink(name, dir_fd=written.dir_fd)
        except OSError:
            pass
    for parent_fd, part in reversed(written.created_dirs):
        try:
            os.rmdir(part, dir_fd=parent_fd)
        except OSError:
            pass  # another run's files are still in it
