"""CLI logging: stderr, quiet by default, and redaction that keeps secrets out of every line.

Redaction happens twice: a filter rewrites each record (message, arguments, exception
and stack text) for any handler it sits on, and the CLI's formatter redacts the final
line again, so text added while formatting (a traceback) is covered too.
"""

from __future__ import annotations

import logging
import re

_PEM_PRIVATE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S)
# Private members of a JWK (RFC 7518 §6.2.2, §6.3.2, §6.4.1): the library can log keys as JSON.
_JWK_PRIVATE = re.compile(r'("(?:d|p|q|dp|dq|qi|k)"\s*:\s*")[A-Za-z0-9_-]{16,}(")')

_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a secret (TSIG, EAB HMAC, API token) so that no log line or error can carry it."""
    if len(value) >= 4:
        _secrets.add(value)


def registered_secrets() -> frozenset[str]:
    """The secrets ``register_secret`` was given: a worker process redacts them too."""
    return frozenset(_secrets)


def redact(text: str) -> str:
    # Every log line passes here twice: the substring tests (each a necessary part of its
    # pattern's match) spare the regex scans on the lines that cannot match, nearly all.
    if "PRIVATE KEY-----" in text:
        text = _PEM_PRIVATE.sub("[private key redacted]", text)
    if '"' in text:
        text = _JWK_PRIVATE.sub(r"\1[redacted]\2", text)
    # Longest first, so a secret containing another is replaced whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def setup(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The acme library logs whole JWS payloads and responses at debug level.
    logging.getLogger("acme").setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
