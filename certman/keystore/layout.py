"""Every keystore path and file mode, in one place.

    <root>/                               0700
      accounts/<ca-id>/account.json       URL, contact, directory
      accounts/<ca-id>/key.pem            0600
      certs/<name>/spec.toml              how to (re)issue
      certs/<name>/state.json             attempts, failures, deploy state, ARI window
      certs/<name>/versions/000001/       immutable once renamed into place
      live/<name> -> ../certs/<name>/versions/000001
      index.json                          per name: the facts `list` and `renew` need
      certs/<name>/revoked.json           present once revoked: renewal leaves the name alone
      certs/<name>/order.json             an unfinished order the next run continues
      certs/<name>/order-key.pem          0600, the key that order's CSR was made with
      archive/<name>-<stamp>/             a removed certificate's whole directory
      archive/accounts/<ca-id>-<stamp>/   a deactivated or replaced account
      locks/                              empty flock files; they carry no data
      challenges/<kind>-<address>-<port>/ 0700, key authorizations a run that joined
                                          another's challenge server has it serve

Certificate names and CA ids are checked here before they become path components.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from ..errors import KeystoreError
from ..names import check_cert_name

DIR_MODE = 0o700
SECRET_MODE = 0o600
PUBLIC_MODE = 0o644

VERSION_DIGITS = 6
TMP_PREFIX = ".tmp-"

KEY_FILE = "privkey.pem"
CERT_FILE = "cert.pem"
CHAIN_FILE = "chain.pem"
FULLCHAIN_FILE = "fullchain.pem"
COMBINED_FILE = "combined.pem"
META_FILE = "meta.json"

ACCOUNT_FILE = "account.json"
ACCOUNT_KEY_FILE = "key.pem"
# A rollover's new account key, kept until the CA has switched to it.
PENDING_ACCOUNT_KEY_FILE = "key.pem.next"
SPEC_FILE = "spec.toml"
STATE_FILE = "state.json"
REVOKED_FILE = "revoked.json"
ORDER_FILE = "order.json"
ORDER_KEY_FILE = "order-key.pem"
INDEX_FILE = "index.json"
RENEW_LOCK_FILE = "renew.lock"
KEYSTORE_LOCK_FILE = "keystore.lock"

# Every file that holds key material, wherever it sits in the keystore.
SECRET_FILES = frozenset(
    {KEY_FILE, COMBINED_FILE, ACCOUNT_KEY_FILE, PENDING_ACCOUNT_KEY_FILE, ORDER_KEY_FILE, ACCOUNT_FILE}
)

# Which files of a version hold key material, and so are written 0600.
FILE_MODES = {
    KEY_FILE: SECRET_MODE,
    COMBINED_FILE: SECRET_MODE,
    CERT_FILE: PUBLIC_MODE,
    CHAIN_FILE: PUBLIC_MODE,
    FULLCHAIN_FILE: PUBLIC_MODE,
    META_FILE: PUBLIC_MODE,
}


def ca_id(directory_url: str) -> str:
    """A stable, readable directory name for a CA: host, port and path of its directory URL."""
    parts = urlsplit(directory_url)
    raw = f"{parts.netloc}{parts.path}".strip("/")
    return re.sub(r"[^A-Za-z0-9.-]+", "_", raw).strip("._") or "default"


class Layout(msgspec.Struct, frozen=True):
    root: Path

    @property
    def accounts(self) -> Path:
        return self.root / "accounts"

    def account_dir(self, ca: str) -> Path:
        return self.accounts / ca

    def account_file(self, ca: str) -> Path:
        return self.account_dir(ca) / ACCOUNT_FILE

    def account_key(self, ca: str) -> Path:
        return self.account_dir(ca) / ACCOUNT_KEY_FILE

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    def cert_dir(self, name: str) -> Path:
        return self.certs / check_cert_name(name)

    def spec(self, name: str) -> Path:
        return self.cert_dir(name) / SPEC_FILE

    def state(self, name: str) -> Path:
        return self.cert_dir(name) / STATE_FILE

    def versions(self, name: str) -> Path:
        return self.cert_dir(name) / "versions"

    def meta(self, name: str, version: str) -> Path:
        return self.versions(name) / version / META_FILE

    def revoked(self, name: str) -> Path:
        return self.cert_dir(name) / REVOKED_FILE

    def order(self, name: str) -> Path:
        return self.cert_dir(name) / ORDER_FILE

    def order_key(self, name: str) -> Path:
        return self.cert_dir(name) / ORDER_KEY_FILE

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    def pending_account_key(self, ca: str) -> Path:
        return self.account_dir(ca) / PENDING_ACCOUNT_KEY_FILE

    @property
    def live(self) -> Path:
        return self.root / "live"

    def live_link(self, name: str) -> Path:
        return self.live / check_cert_name(name)

    @property
    def index(self) -> Path:
        return self.root / INDEX_FILE

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    def cert_lock(self, name: str) -> Path:
        return self.locks / f"{check_cert_name(name)}.lock"

    @property
    def keystore_lock(self) -> Path:
        return self.locks / KEYSTORE_LOCK_FILE

    @property
    def renew_lock(self) -> Path:
        return self.locks / RENEW_LOCK_FILE


class LivePaths(msgspec.Struct, frozen=True):
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


def version_name(number: int) -> str:
    return f"{number:0{VERSION_DIGITS}d}"


def check_parent(root: Path) -> None:
    """``KeystoreError`` for a new keystore whose parent directory is missing, unless it is
    the documented default (``certman.paths.default_keystore``), made with its parents.

    As ``mkdir`` without ``-p``: a typo in --keystore must not build a tree of directories
    nobody asked for (docs/keystore.md, "Where it lives")."""
    from ..paths import absolute, default_keystore

    if os.path.lexists(root) or os.path.isdir(root.parent) or str(root) == absolute(default_keystore()):
        return
    missing = root.parent
    while not os.path.lexists(missing.parent):
        missing = missing.parent
    raise KeystoreError(
        f"keystore {root} does not exist, and neither does {missing}",
        f"check the path for a typo, or create its parent first: mkdir -p {root.parent}",
    )
