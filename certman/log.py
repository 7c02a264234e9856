"""CLI logging: stderr, quiet by default, and a filter that keeps secrets out of every record."""

from __future__ import annotations

import logging
import re

_PEM_PRIVATE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S)

_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret (TSIG, EAB HMAC, API token) so that no log line can carry it."""
    if len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    text = _PEM_PRIVATE.sub("[private key redacted]", text)
    for secret in _secrets:
        text = text.replace(secret, "[redacted]")
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


def setup(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The acme library logs whole JWS payloads and responses at debug level.
    logging.getLogger("acme").setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
