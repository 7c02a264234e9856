"""The fleet key: 32 random bytes in a file of mode 0600 that every host of a fleet holds.

Every private key (certificate keys, account keys, pending-order keys) is sealed with
it before it reaches the shared store: AES-256-GCM (NIST SP 800-38D) with a fresh
96-bit nonce per value and, as associated data, what the value is (kind, name,
version). A sealed key moved to another row or version does not open. The database
and its backups never hold a private key in clear.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import ConfigError, KeystoreError

KEY_BYTES = 32
NONCE_BYTES = 12
# A fixed text sealed at `store init`: a wrong key file fails on it before anything is written.
CHECK_PLAINTEXT = b"certman fleet key check v1"
CHECK_CONTEXT = "fleet-key-check"


def _hint(path: Path) -> str:
    return f"use the fleet key file the store was initialised with (store_key_file), mode 0600; {path} is not it"


class FleetKey:
    """An AES-256-GCM key and the file it came from (named in every error, never its bytes)."""

    def __init__(self, key: bytes, path: Path) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError(f"fleet key file {path} holds {len(key)} bytes, not {KEY_BYTES}")
        self._key = key
        self.path = path

    def __repr__(self) -> str:
        return f"FleetKey({str(self.path)!r})"

    @classmethod
    def load(cls, path: Path) -> FleetKey:
        """Read the key file; ``ConfigError`` (exit 2) if it is missing, others can read it, or its size is wrong."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise ConfigError(
                f"fleet key file {path} cannot be read: {exc.strerror}",
                "set store_key_file to the fleet's key file, or create one with `certman store init --new-key FILE`",
            ) from None
        try:
            info = os.fstat(fd)
            if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    f"fleet key file {path} is mode {stat.S_IMODE(info.st_mode):04o}: others can read it",
                    f"chmod 600 {path}",
                )
            data = os.read(fd, KEY_BYTES + 1)
        finally:
            os.close(fd)
        return cls(data, path)

    @classmethod
    def create(cls, path: Path) -> FleetKey:
        """Write a fresh random key to ``path`` (mode 0600 from its first byte); never overwrites."""
        key = os.urandom(KEY_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            raise ConfigError(
                f"fleet key file {path} exists already",
                "every host needs the same key: copy the existing file, or choose a new path",
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot create fleet key file {path}: {exc.strerror}") from None
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        return cls(key, path)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """nonce || ciphertext+tag of ``plaintext``, bound to ``context`` (e.g. "cert:NAME:000003")."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self._key).encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str, where: str) -> bytes:
        """The plaintext ``seal`` sealed under ``context``; ``KeystoreError`` naming the key file if
        this is not the key (or the value is not the one for ``where``)."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            return AESGCM(self._key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode())
        except (InvalidTag, ValueError):
            raise KeystoreError(
                f"the fleet key {self.path} does not open {where} in the store", _hint(self.path)
            ) from None

    def check(self, sealed_check: bytes, location: str) -> None:
        """Whether this is the key the store at ``location`` was initialised with (``KeystoreError`` if not)."""
        if self.open(sealed_check, CHECK_CONTEXT, f"the key check of {location}") != CHECK_PLAINTEXT:
            raise KeystoreError(f"the fleet key {self.path} is not the key of {location}", _hint(self.path))
