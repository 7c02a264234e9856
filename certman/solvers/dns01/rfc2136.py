"""RFC 2136 dynamic update with a TSIG key (RFC 8945): the reference DNS provider, e.g. for BIND.

Updates go over TCP to the primary. The zone is the one configured, or found by
walking SOA queries up from the record name on that same server, insisting on an
authoritative answer. Cleanup deletes only our TXT rdata, never the whole RRset, so a
wildcard and its apex (two values at one name) or another client's record survive.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update

from ...errors import ConfigError, SolverError
from ...plugins.settings import Seconds, setting, settings_from
from .propagation import parse_server

log = logging.getLogger(__name__)

ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5")


@dataclass(frozen=True)
class RFC2136Settings:
    server: str = setting(
        help="Primary nameserver accepting updates: host, host:port or [v6]:port.", env="CERTMAN_RFC2136_SERVER"
    )
    key_name: str = setting(help="TSIG key name, as in the server's key statement.", env="CERTMAN_RFC2136_KEY_NAME")
    key_secret: str = setting(
        help="TSIG secret (base64). Prefer key_secret_file or CERTMAN_RFC2136_SECRET_FILE.",
        env="CERTMAN_RFC2136_SECRET",
        secret=True,
    )
    key_algorithm: str = setting(
        help=f"TSIG algorithm: {', '.join(ALGORITHMS)}.", env="CERTMAN_RFC2136_KEY_ALGORITHM", default="hmac-sha256"
    )
    zone: str | None = setting(
        help="Zone to update; default: found by SOA lookup on the server.", env="CERTMAN_RFC2136_ZONE", default=None
    )
    ttl: int = setting(help="TTL of the TXT records, in seconds.", env="CERTMAN_RFC2136_TTL", default=60)
    timeout: Seconds = setting(
        help="Seconds to wait for the server's answer to one message.", env="CERTMAN_RFC2136_TIMEOUT", default=10.0
    )


class RFC2136Provider:
    """Adds and removes TXT values by TSIG-signed dynamic update."""

    settings_classes: ClassVar[tuple[type, ...]] = (RFC2136Settings,)

    def __init__(self, settings: RFC2136Settings) -> None:
        if settings.key_algorithm not in ALGORITHMS:
            raise ConfigError(
                f"rfc2136: unknown TSIG algorithm {settings.key_algorithm!r}", f"choose one of: {', '.join(ALGORITHMS)}"
            )
        try:
            self._keyring = dns.tsigkeyring.from_text(
                {settings.key_name: (settings.key_algorithm, settings.key_secret)}
            )
        except (binascii.Error, ValueError, dns.exception.DNSException):
            raise ConfigError(
                f"rfc2136: the TSIG secret of key {settings.key_name!r} is not valid base64",
                "copy the secret from the key statement that tsig-keygen printed",
            ) from None
        self.settings = settings
        self.address, self.port = parse_server(settings.server)
        self._key_name = dns.name.from_text(settings.key_name)
        self._zones: dict[str, str] = {}

    @classmethod
    def from_options(cls, options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> RFC2136Provider:
        return cls(settings_from(RFC2136Settings, options, plugin="rfc2136", env=env))

    def add_txt(self, fqdn: str, value: str) -> None:
        zone = self.zone_for(fqdn)
        update = self._update(zone)
        update.add(dns.name.from_text(fqdn), self.settings.ttl, dns.rdatatype.TXT, _quoted(value))
        self._send(update, f"add TXT {fqdn}")

    def remove_txt(self, fqdn: str, value: str) -> None:
        zone = self.zone_for(fqdn)
        update = self._update(zone)
        update.delete(dns.name.from_text(fqdn), dns.rdatatype.TXT, _quoted(value))
        self._send(update, f"remove TXT {fqdn}")

    def zone_for(self, fqdn: str) -> str:
        if self.settings.zone:
            return dns.name.from_text(self.settings.zone).to_text()
        name = dns.name.from_text(fqdn)
        if name.to_text() in self._zones:
            return self._zones[name.to_text()]
        candidate = name
        while True:
            query = dns.message.make_query(candidate, dns.rdatatype.SOA)
            # Only the server's own zones count; recursion would also be slow for a name it does not hold.
            query.flags &= ~dns.flags.RD
            query.use_tsig(self._keyring, keyname=self._key_name)
            response = self._exchange(query, f"find the zone of {fqdn}")
            if (
                response.rcode() == dns.rcode.NOERROR
                and response.flags & dns.flags.AA
                and any(r.rdtype == dns.rdatatype.SOA and r.name == candidate for r in response.answer)
            ):
                self._zones[name.to_text()] = candidate.to_text()
                return candidate.to_text()
            if candidate == dns.name.root or len(candidate) <= 2:
                raise SolverError(
                    f"rfc2136: {self.where} is not authoritative for any zone holding {fqdn}",
                    "set the rfc2136 'zone' option, or point 'server' at the zone's primary",
                )
            candidate = candidate.parent()

    @property
    def where(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"

    def _update(self, zone: str) -> dns.update.UpdateMessage:
        return dns.update.UpdateMessage(zone, keyring=self._keyring, keyname=self._key_name)

    def _send(self, message: dns.message.Message, what: str) -> None:
        response = self._exchange(message, what)
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            hint = {
                dns.rcode.REFUSED: "the server's update-policy does not allow this key to change TXT records here",
                dns.rcode.NOTAUTH: f"{self.where} is not the primary of this zone, or the key is not accepted",
                dns.rcode.NOTZONE: "the record is outside the configured zone; fix the rfc2136 'zone' option",
            }.get(rcode, "see the nameserver's log")
            raise SolverError(f"rfc2136: {self.where} refused to {what}: {dns.rcode.to_text(rcode)}", hint)
        log.debug("rfc2136: %s done at %s", what, self.where)

    def _exchange(self, message: dns.message.Message, what: str) -> dns.message.Message:
        key = self.settings.key_name
        try:
            return dns.query.tcp(message, self.address, port=self.port, timeout=self.settings.timeout)
        except dns.tsig.PeerBadSignature:
            raise SolverError(
                f"rfc2136: {self.where} rejected the TSIG signature of key {key!r} (BADSIG) while trying to {what}",
                "the secret differs from the server's key statement; copy it again",
            ) from None
        except dns.tsig.PeerBadKey:
            raise SolverError(
                f"rfc2136: {self.where} does not know TSIG key {key!r} "
                f"({self.settings.key_algorithm}) (BADKEY) while trying to {what}",
                "check key_name and key_algorithm against the server's key statement",
            ) from None
        except dns.tsig.PeerBadTime:
            raise SolverError(
                f"rfc2136: {self.where} says our clock is off (TSIG BADTIME) while trying to {what}",
                "synchronise the clock (NTP): TSIG allows 300 s of difference",
            ) from None
        except (dns.tsig.BadSignature, dns.tsig.PeerError) as exc:
            raise SolverError(
                f"rfc2136: TSIG failure with {self.where} ({type(exc).__name__}) while trying to {what}",
                "check the key settings",
            ) from None
        except dns.exception.Timeout:
            raise SolverError(
                f"rfc2136: {self.where} did not answer within {self.settings.timeout:g} s while trying to {what}",
                "check that the nameserver is up and reachable",
            ) from None
        except ConnectionRefusedError:
            raise SolverError(
                f"rfc2136: {self.where} refused the connection while trying to {what}",
                "check that the nameserver is up and listens on TCP at this address",
            ) from None
        except (OSError, dns.exception.DNSException) as exc:
            raise SolverError(
                f"rfc2136: cannot reach {self.where} to {what}: {getattr(exc, 'strerror', None) or type(exc).__name__}",
                "check the server address",
            ) from None


def _quoted(value: str) -> str:
    # ACME validation strings are base64url, so quoting needs no escaping.
    return f'"{value}"'
