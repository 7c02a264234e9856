"""External account binding (RFC 8555 §7.3.4): the key id and HMAC key a CA hands out.

The HMAC key is a secret: it comes from a file or the environment, never from argv,
and is registered for redaction the moment it is read. A key file goes through the
one strict secret-file reader (``credentials.read_secret_file``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..credentials import EAB_HMAC_VAR as HMAC_ENV
from ..credentials import read_secret, read_secret_file
from ..errors import ConfigError, UsageError
from ..log import register_secret


@dataclass(frozen=True)
class ExternalAccount:
    """The CA's key id and base64url HMAC key (kept out of repr)."""

    kid: str
    hmac_key: str = field(repr=False)

    def binding(self, account_public_key: Any, directory: Any) -> dict[str, Any]:
        """The signed ``externalAccountBinding`` member of a newAccount request."""
        from acme import messages

        try:
            return messages.ExternalAccountBinding.from_data(
                account_public_key=account_public_key, kid=self.kid, hmac_key=self.hmac_key, directory=directory
            )
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"the EAB HMAC key for key id {self.kid!r} is not valid base64url",
                "copy the key exactly as the CA shows it",
            ) from exc


def external_account(
    kid: str | None, hmac_key_file: Path | None = None, *, env: Mapping[str, str] | None = None
) -> ExternalAccount | None:
    """The EAB credentials for ``kid``: HMAC key from ``hmac_key_file``, else $CERTMAN_EAB_HMAC_KEY(_FILE).

    A key file is refused (``ConfigError``, exit 2) if every user may read it; a missing
    key is a ``UsageError`` (exit 2).
    """
    env = os.environ if env is None else env
    if kid is None:
        if hmac_key_file is not None:
            raise UsageError("an EAB HMAC key was given without --eab-kid", "pass the key id as --eab-kid")
        return None
    if hmac_key_file is not None:
        key = read_secret_file(hmac_key_file, "--eab-hmac-key-file").strip()
    else:
        key = (read_secret(HMAC_ENV, env) or "").strip()
    if not key:
        raise UsageError(
            f"--eab-kid {kid} needs its HMAC key", f"pass --eab-hmac-key-file, or set {HMAC_ENV} or {HMAC_ENV}_FILE"
        )
    register_secret(key)
    return ExternalAccount(kid, key)
