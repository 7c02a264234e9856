"""The ``store`` setting: a libpq connection string, read without libpq.

Two forms, as libpq takes them: a URI (``postgresql://certman@db.example.com/certman``)
or ``key=value`` words (``host=db.example.com dbname=certman user=certman``). The
password never belongs in it when it comes from certman.toml (a file usually readable
by everyone): it comes through libpq's own means, ``PGPASSFILE``/``passfile=`` or
``PGPASSWORD``. ``shown`` is the string with any password removed, for every message.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError

_URI_SCHEMES = ("postgresql://", "postgres://")
# key = value, the value bare or single-quoted with backslash escapes (libpq's grammar).
_WORD = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")
HINT = (
    "give the password through libpq instead: a passfile (PGPASSFILE, or passfile=/path in the string, mode 0600) "
    "or PGPASSWORD in the environment of the timer"
)


def is_uri(conninfo: str) -> bool:
    return conninfo.startswith(_URI_SCHEMES)


def _words(conninfo: str) -> list[tuple[str, str]]:
    words, position = [], 0
    text = conninfo.strip()
    while position < len(text):
        match = _WORD.match(text, position)
        if match is None:
            raise ConfigError(
                f"store = {shown(conninfo)!r} is not a libpq connection string",
                "write it as postgresql://USER@HOST/DB or as host=HOST dbname=DB user=USER",
            )
        words.append((match.group(1).lower(), match.group(2)))
        position = match.end()
    return words


def has_password(conninfo: str) -> bool:
    """Whether the string itself carries a password (in the URI's user part or a password= word)."""
    if is_uri(conninfo):
        parts = urlsplit(conninfo)
        in_query = any(k == "password" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
        return parts.password is not None or in_query
    return any(key == "password" for key, _ in _words(conninfo))


def password(conninfo: str) -> str | None:
    """The password the string carries, if any (from CERTMAN_STORE or --store), to redact it."""
    if is_uri(conninfo):
        parts = urlsplit(conninfo)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        found = query.get("password") or (unquote(parts.password) if parts.password else None)
        return found or None
    for key, value in _words(conninfo):
        if key == "password":
            return value[1:-1].replace("\\'", "'").replace("\\\\", "\\") if value.startswith("'") else value
    return None


def shown(conninfo: str) -> str:
    """``conninfo`` without its password, fit for a message or a log line."""
    if is_uri(conninfo):
        parts = urlsplit(conninfo)
        netloc = parts.netloc.rsplit("@", 1)
        if len(netloc) == 2:
            user = unquote(netloc[0].split(":", 1)[0])
            netloc = [f"{user}@{netloc[1]}"]
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"])
        return urlunsplit((parts.scheme, netloc[0], parts.path, query, parts.fragment))
    kept = re.sub(r"\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S*)", "password=[redacted]", conninfo, flags=re.I)
    return kept.strip()


def check_store(conninfo: str, origin: str) -> str:
    """``conninfo`` from certman.toml, refused when it holds a password (``ConfigError``, exit 2)."""
    if not conninfo.strip():
        raise ConfigError(f"{origin}: store is empty", "remove the line, or give a postgresql:// URL")
    if has_password(conninfo):
        raise ConfigError(f"{origin}: store = {shown(conninfo)!r} holds a password", HINT)
    return conninfo
