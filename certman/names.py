"""Identifier validation and normalisation, done locally before any network call.

DNS names go through IDNA2008 (the ``idna`` package with UTS #46 mapping), never
Python's built-in IDNA2003 codec: that one turns ``faß.example`` into
``fass.example``, a different domain. IP literals become RFC 8738 IP identifiers, in
their RFC 5952 text form; an IPv6 zone (``fe80::1%eth0``) is no part of one.

One trailing dot is the fully-qualified spelling of the same DNS name and is dropped
(``example.com.`` is ``example.com``); an IP literal takes none, and a name whose last
label is all digits (``192.0.2.1.``, ``host.123``) is no hostname (RFC 3696 §2).

What a CA agrees to issue for is its own policy: ``certman.ca.policy``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Literal

import msgspec

from .errors import UsageError

MAX_IDENTIFIERS = 100
MAX_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63

# Refused outright with a precise message, before IDNA gets a chance to give a
# vaguer one: these are the characters that turn a name into a path or a command.
_FORBIDDEN = re.compile(r"[/\\\s\x00-\x1f\x7f;|&$`'\"<>(){}\[\]!?#%^~,=+@:]")
_LDH_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

IdentifierType = Literal["dns", "ip"]


class Identifier(msgspec.Struct, frozen=True, order=True):
    """One ACME identifier: a normalised DNS name (A-labels) or an IP address."""

    type: IdentifierType
    value: str

    @property
    def is_wildcard(self) -> bool:
        return self.type == "dns" and self.value.startswith("*.")

    def __str__(self) -> str:
        return self.value


def normalise(raw: str) -> Identifier:
    """Return the canonical identifier for ``raw`` or raise ``UsageError``."""
    text = raw
    if not text:
        raise UsageError("empty identifier", "give a DNS name such as example.com")
    if "%" in text and _as_ip(text.partition("%")[0]) is not None:
        raise UsageError(
            f"invalid identifier {ascii(raw)}: an IPv6 zone ('%...') is not part of an IP identifier",
            "certificates name global addresses; give the address without its zone",
        )
    ip = _as_ip(text)
    if ip is not None:
        return Identifier("ip", ip)
    return Identifier("dns", _normalise_dns(text, raw))


def normalise_all(raws: Iterable[str]) -> tuple[Identifier, ...]:
    """Normalise every identifier, drop duplicates (keeping order) and check the count."""
    seen: dict[Identifier, None] = {}
    for raw in raws:
        seen.setdefault(normalise(raw), None)
    if not seen:
        raise UsageError("no identifiers given", "name at least one domain, e.g. certman issue example.com")
    if len(seen) > MAX_IDENTIFIERS:
        raise UsageError(
            f"{len(seen)} identifiers in one certificate; the limit is {MAX_IDENTIFIERS}",
            "split the names over several certificates",
        )
    return tuple(seen)


def _as_ip(text: str) -> str | None:
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


# RFC 1123 section 2.1 host names, RFC 8555 section 7.1.4 wildcards, RFC 8738 addresses.
_NAME_HINT = "give a host name such as www.example.com, a wildcard *.example.com or an IP address"


def _normalise_dns(text: str, raw: str) -> str:
    shown = ascii(raw)
    bad = _FORBIDDEN.search(text)
    if bad:
        raise UsageError(
            f"invalid identifier {shown}: character {ascii(bad.group())} is not allowed in a DNS name", _NAME_HINT
        )
    # One trailing dot is the fully-qualified spelling of the same name.
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    labels = text.split(".")
    wildcard = labels[0] == "*"
    if wildcard:
        labels = labels[1:]
        if not labels:
            raise UsageError(f"invalid identifier {shown}: a wildcard needs a domain after '*.'", _NAME_HINT)
    encoded = [_encode_label(label, shown) for label in labels]
    if encoded[-1].isdigit():
        raise UsageError(
            f"invalid identifier {shown}: the last label of a DNS name cannot be all digits",
            "write an IP address without a trailing dot, e.g. 192.0.2.1",
        )
    name = ".".join((["*"] if wildcard else []) + encoded)
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(
            f"invalid identifier {shown}: {len(name)} characters, the limit is {MAX_NAME_LENGTH}", _NAME_HINT
        )
    return name


def _encode_label(label: str, shown: str) -> str:
    if label == "":
        raise UsageError(f"invalid identifier {shown}: empty label", _NAME_HINT)
    if "*" in label:
        raise UsageError(
            f"invalid identifier {shown}: a wildcard is only allowed as the whole leftmost label",
            "write it as *.example.com",
        )
    if label.startswith("-") or label.endswith("-"):
        raise UsageError(f"invalid identifier {shown}: label {label!r} starts or ends with a hyphen", _NAME_HINT)
    import idna  # deferred: only commands that take names pay for it

    try:
        encoded = idna.encode(label, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise UsageError(f"invalid identifier {shown}: {exc}", _NAME_HINT) from exc
    if len(encoded) > MAX_LABEL_LENGTH:
        raise UsageError(
            f"invalid identifier {shown}: label of {len(encoded)} characters, the limit is {MAX_LABEL_LENGTH}",
            _NAME_HINT,
        )
    if not _LDH_LABEL.fullmatch(encoded):
        raise UsageError(f"invalid identifier {shown}: label {encoded!r} is not a valid hostname label", _NAME_HINT)
    return encoded


def default_cert_name(identifiers: tuple[Identifier, ...]) -> str:
    """The keystore name for a certificate: its first identifier, '*' spelled '_' and ':' spelled '-'.

    An IPv6 address that starts with ``::`` starts with a 0 group written out
    (``::1`` is ``0--1``, as ``0::1`` is the same address), so every identifier
    ``normalise`` accepts has a valid name (``check_cert_name``).
    """
    first = identifiers[0]
    value = f"0{first.value}" if first.type == "ip" and first.value.startswith("::") else first.value
    return check_cert_name(value.replace("*", "_").replace(":", "-"))


_CERT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def check_cert_name(name: str) -> str:
    """A certificate name becomes a directory name: allow only a safe alphabet."""
    if not _CERT_NAME.fullmatch(name) or ".." in name:
        raise UsageError(
            f"invalid certificate name {ascii(name)}",
            "use letters, digits, '.', '_' and '-' (at most 128), not starting with '.' or '-'",
        )
    return name
