"""Where a challenge record lives, and waiting until every authoritative nameserver serves it.

A recursive resolver is asked only about names that already exist (the zone of the
identifier, NS names and their addresses): asking it about ``_acme-challenge.<name>``
before the record exists would cache the NXDOMAIN, and a CA behind that resolver
would then see no record for the negative TTL. Everything about the challenge name
itself goes straight to the zone's authoritative servers, without recursion.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from ... import progress
from ...errors import PropagationTimeout, SolverError
from ...plugins.settings import Port, Seconds, setting

log = logging.getLogger(__name__)

FIRST_DELAY = 0.05
MAX_DELAY = 2.0
BACKOFF = 1.6
MAX_CNAME_HOPS = 8
MAX_PARALLEL_QUERIES = 16


@dataclass(frozen=True)
class PropagationSettings:
    propagation_timeout: Seconds = setting(
        help="Seconds to wait until every authoritative nameserver serves the record.",
        env="CERTMAN_DNS01_PROPAGATION_TIMEOUT",
        default=120.0,
    )
    settle_delay: float = setting(
        help="Extra seconds to wait after all nameservers agree (anycast providers).",
        env="CERTMAN_DNS01_SETTLE_DELAY",
        default=0.0,
    )
    resolvers: tuple[str, ...] = setting(
        help="Recursive resolvers (ip or ip:port, comma-separated) used to find zones and nameservers; "
        "default: the system's.",
        env="CERTMAN_DNS01_RESOLVERS",
        default=(),
    )
    nameserver_port: Port = setting(
        help="Port on which the authoritative nameservers are queried.", env="CERTMAN_DNS01_NAMESERVER_PORT", default=53
    )
    query_timeout: Seconds = setting(
        help="Seconds to wait for one DNS answer.", env="CERTMAN_DNS01_QUERY_TIMEOUT", default=2.0
    )


@dataclass(frozen=True)
class Nameserver:
    name: str
    address: str

    def __str__(self) -> str:
        return f"{self.name} ({self.address})"


@dataclass(frozen=True)
class Zone:
    name: str
    nameservers: tuple[Nameserver, ...]


@dataclass(frozen=True)
class Answer:
    """What one authoritative server said about a name: its TXT values, or a CNAME, or a problem."""

    txt: frozenset[str] = frozenset()
    cname: str | None = None
    problem: str | None = None
    # This host has no route to the address (typically IPv6 on a v4-only host).
    unroutable: bool = False


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``::1`` or ``[::1]:5353`` -> (address, port)."""
    text = text.strip()
    if text.startswith("["):
        address, _, port = text[1:].partition("]")
        return address, int(port.lstrip(":") or default_port)
    if text.count(":") == 1:
        address, _, port = text.partition(":")
        return address, int(port)
    return text, default_port


class DNSLookup:
    """Zone discovery, CNAME following and the propagation wait, over injectable servers."""

    def __init__(
        self,
        settings: PropagationSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.resolver = dns.resolver.Resolver(configure=not settings.resolvers)
        if settings.resolvers:
            self.resolver.nameservers = [dns.nameserver.Do53Nameserver(*parse_server(r)) for r in settings.resolvers]
        self.resolver.lifetime = max(settings.query_timeout * 2, 1.0)
        self._zones: dict[str, Zone] = {}

    def zone_of(self, name: str) -> Zone:
        """The zone holding ``name`` and its authoritative nameservers' addresses (v4 and v6)."""
        try:
            zone = dns.resolver.zone_for_name(name, resolver=self.resolver).to_text()
        except dns.exception.DNSException as exc:
            raise SolverError(
                f"cannot find the DNS zone of {name}: {_reason(exc)}",
                "check the resolvers (dns01 'resolvers') and that the domain is delegated",
            ) from exc
        if zone in self._zones:
            return self._zones[zone]
        try:
            ns_names = sorted(r.target.to_text() for r in self.resolver.resolve(zone, dns.rdatatype.NS))
        except dns.exception.DNSException as exc:
            raise SolverError(f"cannot find the nameservers of zone {zone}: {_reason(exc)}") from exc
        nameservers = [Nameserver(ns, address) for ns in ns_names for address in self._addresses(ns)]
        if not nameservers:
            raise SolverError(f"no nameserver of zone {zone} ({', '.join(ns_names)}) has an address")
        self._zones[zone] = Zone(zone, tuple(nameservers))
        return self._zones[zone]

    def _addresses(self, host: str) -> list[str]:
        addresses: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                answer = self.resolver.resolve(host, rdtype, raise_on_no_answer=False)
            except dns.exception.DNSException as exc:
                log.debug("no %s for nameserver %s: %s", dns.rdatatype.to_text(rdtype), host, exc)
                continue
            addresses.extend(r.address for r in answer.rrset or ())
        return addresses

    def query(self, server: Nameserver, name: str, timeout: float | None = None) -> Answer:
        """Ask one authoritative server about ``name`` directly, without recursion."""
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        query.flags &= ~dns.flags.RD
        wait = self.settings.query_timeout if timeout is None else max(min(timeout, self.settings.query_timeout), 0.05)
        try:
            response = dns.query.udp(query, server.address, port=self.settings.nameserver_port, timeout=wait)
            if response.flags & dns.flags.TC:
                response = dns.query.tcp(query, server.address, port=self.settings.nameserver_port, timeout=wait)
        except dns.exception.Timeout:
            return Answer(problem="no answer (timed out)")
        except OSError as exc:
            return Answer(problem=_reason(exc), unroutable=exc.errno in (errno.ENETUNREACH, errno.EADDRNOTAVAIL))
        except dns.exception.DNSException as exc:
            return Answer(problem=_reason(exc))
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return Answer(problem=f"answered {dns.rcode.to_text(rcode)}")
        owner = dns.name.from_text(name)
        values: set[str] = set()
        for rrset in response.answer:
            if rrset.name != owner:
                continue
            if rrset.rdtype == dns.rdatatype.CNAME:
                return Answer(cname=rrset[0].target.to_text())
            if rrset.rdtype == dns.rdatatype.TXT:
                values.update(b"".join(r.strings).decode(errors="replace") for r in rrset)
        return Answer(txt=frozenset(values))

    def challenge_target(self, record_name: str, zone: Zone) -> tuple[str, Zone]:
        """Follow CNAMEs on ``record_name`` (RFC 8555 §8.4 allows delegating the record) to where it is written."""
        name = record_name
        for _ in range(MAX_CNAME_HOPS):
            answer = self._first_answer(zone, name)
            if answer.cname is None:
                return name, zone
            log.info("%s is a CNAME to %s; the TXT record goes there", name, answer.cname)
            name = answer.cname
            zone = self.zone_of(dns.name.from_text(name).parent().to_text())
        raise SolverError(f"{record_name} has a CNAME chain longer than {MAX_CNAME_HOPS} hops")

    def _first_answer(self, zone: Zone, name: str) -> Answer:
        problems = []
        for server in zone.nameservers:
            answer = self.query(server, name)
            if answer.problem is None:
                return answer
            problems.append(f"{server}: {answer.problem}")
        raise SolverError(
            f"no nameserver of zone {zone.name} answers for {name}: {'; '.join(problems)}",
            "check that the zone's nameservers are up and reachable from here",
        )

    def _query_all(self, keys: list[tuple[str, Nameserver]], timeout: float) -> dict[tuple[str, Nameserver], Answer]:
        """Ask every (name, server) at once, so that one slow or dead server does not delay the others."""
        if len(keys) == 1:
            return {keys[0]: self.query(keys[0][1], keys[0][0], timeout=timeout)}
        with ThreadPoolExecutor(max_workers=min(len(keys), MAX_PARALLEL_QUERIES)) as pool:
            futures = {key: pool.submit(self.query, key[1], key[0], timeout) for key in keys}
            return {key: future.result() for key, future in futures.items()}

    def wait_served(self, records: Mapping[str, tuple[Zone, frozenset[str]]]) -> None:
        """Poll every nameserver of each record's zone until it serves all the values, with backoff.

        Raises PropagationTimeout naming the nameservers that still lack a record.
        """
        started = self.clock()
        deadline = started + self.settings.propagation_timeout
        pending = {(name, server): values for name, (zone, values) in records.items() for server in zone.nameservers}
        problems: dict[tuple[str, Nameserver], str] = {}
        with progress.waiting("DNS propagation") as wait:
            self._poll_served(records, pending, problems, deadline, wait)
        log.info("all authoritative nameservers serve the challenge records after %.2f s", self.clock() - started)
        if self.settings.settle_delay > 0:
            with progress.waiting(f"DNS to settle ({self.settings.settle_delay:g} s, settle_delay)"):
                self.sleep(self.settings.settle_delay)

    def _poll_served(
        self,
        records: Mapping[str, tuple[Zone, frozenset[str]]],
        pending: dict[tuple[str, Nameserver], frozenset[str]],
        problems: dict[tuple[str, Nameserver], str],
        deadline: float,
        wait: progress.Wait,
    ) -> None:
        delay = FIRST_DELAY
        while True:
            answers = self._query_all(list(pending), deadline - self.clock())
            for key, answer in answers.items():
                values = pending[key]
                if answer.problem is None and values <= answer.txt:
                    del pending[key]
                    problems.pop(key, None)
                elif answer.unroutable and _reachable_elsewhere(key[1], records[key[0]][0]):
                    # The CA may reach it, we cannot; the server's other addresses still get checked.
                    log.warning("skipping %s: %s", key[1], answer.problem)
                    del pending[key]
                else:
                    problems[key] = (
                        answer.problem or f"{len(values - answer.txt)} of our {len(values)} value(s) missing"
                    )
            if not pending:
                break
            remaining = deadline - self.clock()
            if remaining <= 0:
                lacking = "; ".join(
                    f"{server} for {name}: {problems[(name, server)]}"
                    for name, server in sorted(pending, key=lambda k: (k[0], str(k[1])))
                )
                raise PropagationTimeout(
                    f"after {self.settings.propagation_timeout:g} s, "
                    f"{len({s for _, s in pending})} nameserver(s) still lack "
                    f"the challenge record: {lacking}",
                    "check that the DNS provider writes to the zone these nameservers serve, "
                    "or raise the dns-01 propagation_timeout",
                )
            lacking_servers = sorted({str(server) for _, server in pending})
            wait.update(f"DNS propagation: {', '.join(lacking_servers)} still lack the record")
            self.sleep(min(delay, remaining))
            delay = min(delay * BACKOFF, MAX_DELAY)


def _reachable_elsewhere(server: Nameserver, zone: Zone) -> bool:
    return any(ns.name == server.name and ns.address != server.address for ns in zone.nameservers)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
