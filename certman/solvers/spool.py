"""The challenge spool: the files through which a joining certman process hands its entries
(HTTP-01 tokens, TLS-ALPN-01 names, each with its key authorization) to the process whose
server holds the port (``certman.solvers.shared``).

One directory per port, 0700, never through a symlink. An entry is written aside and
renamed, so the holder never answers half a key authorization; the holder reads it by its
exact name, which ``certman.solvers.shared`` has checked is a token or an SNI name.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from ..keystore.files import ensure_dir, storage_error

log = logging.getLogger(__name__)

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# An answer is one key authorization (RFC 8555 §8.1): far less than this.
_READ_LIMIT = 4096


class Spool:
    """The spool directory ``path`` of one port. ``write`` raises ``KeystoreError``; reading,
    removing and clearing never raise (a file already gone is what they want)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, name: str) -> bytes | None:
        """The entry ``name``, or None when no joiner wrote it."""
        try:
            directory = os.open(self.path, _OPEN_DIR)
        except OSError:
            return None
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
            with os.fdopen(fd, "rb") as file:
                return file.read(_READ_LIMIT)
        except OSError:
            return None
        finally:
            os.close(directory)

    def write(self, entries: Mapping[str, bytes]) -> None:
        directory = self._made()
        try:
            for name, data in entries.items():
                temporary = f".tmp-{os.getpid()}-{threading.get_ident()}"
                fd = os.open(
                    temporary,
                    os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                    dir_fd=directory,
                )
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
                os.rename(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
        except OSError as exc:
            raise storage_error(exc, self.path, "writing the challenge spool") from exc
        finally:
            os.close(directory)

    def unlink(self, name: str) -> None:
        try:
            directory = os.open(self.path, _OPEN_DIR)
        except OSError:
            return
        try:
            os.unlink(name, dir_fd=directory)
        except OSError as exc:
            log.warning("cannot remove %s from the challenge spool: %s", name, exc.strerror)
        finally:
            os.close(directory)

    def clear(self) -> None:
        try:
            directory = os.open(self.path, _OPEN_DIR)
        except OSError:
            return
        try:
            for name in os.listdir(directory):
                os.unlink(name, dir_fd=directory)
        except OSError as exc:
            log.warning("cannot clear the challenge spool %s: %s", self.path, exc.strerror)
        finally:
            os.close(directory)

    def _made(self) -> int:
        """The spool directory, made if missing, opened."""
        try:
            ensure_dir(self.path.parent)
            ensure_dir(self.path)
            return os.open(self.path, _OPEN_DIR)
        except OSError as exc:
            raise storage_error(exc, self.path, "opening the challenge spool") from exc
