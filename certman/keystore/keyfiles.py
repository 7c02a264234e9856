"""Stored private keys are checked when read, so a corrupt one is a keystore error naming its file.

Without the check, the first use of the key (signing a request, building a CSR) raised
a ValueError deep in cryptography, which the CLI could only call an internal error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import KeystoreError

if TYPE_CHECKING:
    from ..keys import PrivateKey

SPEC_HINT = "restore it from a backup, or `certman issue` the certificate again with its names and options"
ORDER_HINT = "remove order.json and order-key.pem beside it: the next run starts a new order"
ACCOUNT_HINT = "restore the account directory from a backup, or move it aside and run `certman account register`"


def check_private_key(pem: bytes, path: Path, hint: str) -> None:
    """``KeystoreError`` (exit 3) naming ``path`` unless ``pem`` is a private key certman can use."""
    load_private_key(pem, path, hint)


def load_private_key(pem: bytes, path: Path, hint: str) -> PrivateKey:
    """The key in ``pem``, read from ``path``; ``KeystoreError`` (exit 3) naming ``path`` if it is not one."""
    from ..errors import UsageError
    from ..keys import load_key  # deferred: cryptography loads only where a key is used

    try:
        return load_key(pem)
    except (ValueError, TypeError, UsageError) as exc:
        # The key material itself never goes into the message.
        reason = exc.message if isinstance(exc, UsageError) else "not a PEM private key"
        raise KeystoreError(f"key file {path} is unreadable: {reason}", hint) from None
