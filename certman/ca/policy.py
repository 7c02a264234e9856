"""What a CA will issue for, checked locally before the first request to it.

For every CA, certman checks the identifiers' syntax (``certman.names``: RFC 1123
hostnames, RFC 8738 IP addresses) and which challenge can prove them
(``check_solver_fits``). Anything more is the CA's own policy, which certman knows only for
Let's Encrypt (production and staging), from its published documentation
(letsencrypt.org/docs/profiles, /docs/rate-limits, and Boulder's policy authority):

- a DNS name needs at least two labels, and its top-level domain must be a public
  one: ``localhost``, ``x``, ``printer.local``, ``host.internal``, ``a.test`` are refused;
- an IP address only with the ``shortlived`` profile, and only a globally routable
  one (no private, loopback, link-local or reserved address);
- at most 25 identifiers with the ``tlsserver`` and ``shortlived`` profiles (100 otherwise,
  which ``certman.names`` enforces for every CA).

Without the Public Suffix List, certman cannot refuse every name Let's Encrypt
refuses (``example.notatld``); the CA's own answer stays the last word for those.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ..errors import UsageError
from ..names import Identifier

LETS_ENCRYPT_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT = frozenset({LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING})
HTTP01_SOLVERS = ("standalone", "webroot")
TLSALPN01_SOLVER = "tls-alpn-01"
DNS01_SOLVER = "dns-01"
# Special-use and private-use top-level names (RFC 2606, 6761, 6762, 7686, 9476, ICANN's
# .internal): never public suffixes, so never issued for by a public CA.
RESERVED_TLDS = frozenset({"localhost", "local", "test", "example", "invalid", "internal", "onion", "alt"})
IP_PROFILE = "shortlived"
SHORT_PROFILES = ("tlsserver", "shortlived")
SHORT_PROFILE_LIMIT = 25


def check_solver_fits(solver: str, identifier: Identifier) -> None:
    """Refuse a built-in solver that cannot prove ``identifier``, before any request.

    A wildcard needs DNS-01 (RFC 8555 §7.1.3; RFC 8737 §3 for TLS-ALPN-01); an IP address
    cannot be proven by DNS-01 (RFC 8738 §7). Raises ``UsageError``.
    """
    kind = "HTTP-01" if solver in HTTP01_SOLVERS else "TLS-ALPN-01" if solver == TLSALPN01_SOLVER else None
    if identifier.is_wildcard and kind is not None:
        raise UsageError(
            f"{identifier} is a wildcard, which {kind} ({solver}) cannot validate",
            "wildcards need DNS-01: use a DNS solver for this name",
        )
    if identifier.type == "ip" and solver == DNS01_SOLVER:
        raise UsageError(
            f"{identifier} is an IP address, which DNS-01 cannot validate",
            "use http-01 (standalone or webroot) or tls-alpn-01 for IP addresses",
        )


def check_policy(identifiers: Iterable[Identifier], profile: str | None, directory_urls: Iterable[str]) -> None:
    """Refuse what any of the CAs at ``directory_urls`` (a certificate's server and fallbacks)
    is known to refuse for ``identifiers`` under ``profile``.

    Raises ``UsageError`` (exit 2) naming the identifier, the CA and the rule, with a hint.
    """
    identifiers = tuple(identifiers)
    for url in directory_urls:
        if url in LETS_ENCRYPT:
            lets_encrypt(identifiers, profile, url)


def lets_encrypt(identifiers: Iterable[Identifier], profile: str | None, server: str) -> None:
    """Let's Encrypt's published identifier policy; ``server`` names the CA in the message."""
    identifiers = tuple(identifiers)
    where = f"Let's Encrypt ({server})"
    if profile in SHORT_PROFILES and len(identifiers) > SHORT_PROFILE_LIMIT:
        raise UsageError(
            f"{len(identifiers)} identifiers in one certificate; {where} allows at most "
            f"{SHORT_PROFILE_LIMIT} with the {profile} profile",
            "split the names over several certificates, or use the classic profile",
        )
    for identifier in identifiers:
        if identifier.type == "ip":
            _ip(identifier.value, profile, where)
        else:
            _dns(identifier.value, where)


def _dns(name: str, where: str) -> None:
    labels = name.split(".")
    if labels[0] == "*":
        labels = labels[1:]
    if len(labels) < 2:
        raise UsageError(
            f"{where} does not issue for the single-label name {name!r}",
            "use a fully qualified public name, or a private CA (--server) for local names",
        )
    suffix = "home.arpa" if name.endswith(".home.arpa") else labels[-1]
    if suffix in RESERVED_TLDS or suffix == "home.arpa":
        raise UsageError(
            f"{where} does not issue for {name!r}: .{suffix} is a reserved, non-public domain",
            "use a public name, or a private CA (--server) for local names",
        )


def _ip(value: str, profile: str | None, where: str) -> None:
    if not ipaddress.ip_address(value).is_global:
        raise UsageError(
            f"{where} does not issue for {value}: it is not a globally routable address",
            "a public CA validates only public addresses; use a private CA (--server) for this one",
        )
    if profile != IP_PROFILE:
        raise UsageError(
            f"{where} issues for an IP address ({value}) only with the {IP_PROFILE} profile",
            f"add --profile {IP_PROFILE} (6-day certificates; renew runs must be at least daily)",
        )
