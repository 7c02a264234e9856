"""The DNS-01 adapter against a real BIND: record names, CNAME delegation, wildcards, propagation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fixtures.bind import DELEGATED_NAME, DELEGATION_TARGET, Bind

from certman.errors import PropagationTimeout, SolverError
from certman.names import Identifier
from certman.solvers import Challenge
from certman.solvers.dns01 import DNS01Solver, record_name
from certman.solvers.dns01.propagation import DNSLookup, PropagationSettings
from certman.solvers.dns01.rfc2136 import RFC2136Provider


def challenge(name: str, value: str) -> Challenge:
    return Challenge(Identifier("dns", name), "dns-01", "t" * 43, value)


def solver(rfc2136_options: dict[str, Any], propagation_options: dict[str, Any], **extra: Any) -> DNS01Solver:
    return DNS01Solver.from_options({"provider": "rfc2136", **rfc2136_options, **propagation_options, **extra}, env={})


def test_record_name_of_a_wildcard_is_its_base_name() -> None:
    assert record_name("*.example.com") == "_acme-challenge.example.com."
    assert record_name("example.com") == "_acme-challenge.example.com."


def test_present_makes_the_value_visible_and_cleanup_removes_it(
    bind: Bind, rfc2136_options: dict[str, Any], propagation_options: dict[str, Any]
) -> None:
    batch = (challenge("visible.example.test", "value-visible"),)
    dns01 = solver(rfc2136_options, propagation_options)
    dns01.present(batch)
    dns01.wait_ready(batch)
    assert bind.txt("_acme-challenge.visible.example.test") == {"value-visible"}
    dns01.cleanup(batch)
    assert bind.txt("_acme-challenge.visible.example.test") == set()


def test_wildcard_and_apex_share_one_name_with_two_values(
    bind: Bind, rfc2136_options: dict[str, Any], propagation_options: dict[str, Any]
) -> None:
    batch = (challenge("wild.example.test", "value-apex"), challenge("*.wild.example.test", "value-wildcard"))
    dns01 = solver(rfc2136_options, propagation_options)
    dns01.present(batch)
    dns01.wait_ready(batch)
    assert bind.txt("_acme-challenge.wild.example.test") == {"value-apex", "value-wildcard"}
    dns01.cleanup(batch)
    assert bind.txt("_acme-challenge.wild.example.test") == set()


def test_cleanup_keeps_values_it_did_not_add(
    bind: Bind, rfc2136_options: dict[str, Any], propagation_options: dict[str, Any]
) -> None:
    other = solver(rfc2136_options, propagation_options)
    other_batch = (challenge("shared.example.test", "someone-elses"),)
    other.present(other_batch)
    ours = solver(rfc2136_options, propagation_options)
    batch = (challenge("shared.example.test", "ours"),)
    ours.present(batch)
    ours.cleanup(batch)
    assert bind.txt("_acme-challenge.shared.example.test") == {"someone-elses"}
    other.cleanup(other_batch)


def test_a_cname_on_the_challenge_name_moves_the_record_to_its_target(
    bind: Bind, rfc2136_options: dict[str, Any], propagation_options: dict[str, Any]
) -> None:
    batch = (challenge(DELEGATED_NAME, "value-delegated"),)
    dns01 = solver(rfc2136_options, propagation_options)
    dns01.present(batch)
    dns01.wait_ready(batch)
    assert bind.txt(DELEGATION_TARGET) == {"value-delegated"}
    dns01.cleanup(batch)
    assert bind.txt(DELEGATION_TARGET) == set()


def test_zone_nameservers_are_queried_on_every_address(bind: Bind) -> None:
    lookup = DNSLookup(PropagationSettings(resolvers=(bind.address,), nameserver_port=bind.port))
    zone = lookup.zone_of("example.test")
    assert zone.name == "example.test."
    assert {ns.address for ns in zone.nameservers} == set(bind.addresses)


def test_a_record_that_never_appears_times_out_naming_the_nameservers(bind: Bind) -> None:
    lookup = DNSLookup(
        PropagationSettings(resolvers=(bind.address,), nameserver_port=bind.port, propagation_timeout=0.5)
    )
    zone = lookup.zone_of("example.test")
    with pytest.raises(PropagationTimeout) as raised:
        lookup.wait_served({"_acme-challenge.never.example.test.": (zone, frozenset({"never"}))})
    assert "ns1.example.test. (127.0.0.1)" in raised.value.message


def test_a_nameserver_that_is_down_gives_a_clear_error_within_the_timeout(bind: Bind) -> None:
    import services

    dead_port = services.free_port()
    lookup = DNSLookup(
        PropagationSettings(
            resolvers=(bind.address,), nameserver_port=dead_port, propagation_timeout=0.5, query_timeout=0.2
        )
    )
    zone = lookup.zone_of("example.test")
    with pytest.raises(PropagationTimeout) as raised:
        lookup.wait_served({"_acme-challenge.down.example.test.": (zone, frozenset({"v"}))})
    assert "ns1.example.test. (127.0.0.1) for _acme-challenge.down.example.test.: " in raised.value.message


def test_an_unknown_zone_is_a_solver_error(
    bind: Bind, rfc2136_options: dict[str, Any], propagation_options: dict[str, Any]
) -> None:
    dns01 = solver(rfc2136_options, propagation_options, query_timeout=0.3)
    with pytest.raises(SolverError, match="cannot find the DNS zone of nowhere.invalid"):
        dns01.present((challenge("nowhere.invalid", "v"),))


def test_the_challenge_name_is_never_asked_with_recursion(
    bind: Bind, rfc2136_options: dict[str, Any], propagation_options: dict[str, Any]
) -> None:
    batch = (challenge("norecurse.example.test", "value-norecurse"),)
    dns01 = solver(rfc2136_options, propagation_options)
    dns01.present(batch)
    dns01.wait_ready(batch)
    dns01.cleanup(batch)
    queries = bind.queries_for("_acme-challenge.norecurse.example.test")
    assert queries, "the propagation check should have queried the name"
    # BIND's query log marks recursion desired with "+" right after the type, "-" without.
    assert all(re.search(r" IN [A-Z]+ -", line) for line in queries), queries


class FakeTime:
    """A clock that only moves when the code under test sleeps, recording each sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_polling_backs_off_from_50_ms_up_to_2_s_until_the_timeout(bind: Bind) -> None:
    fake = FakeTime()
    lookup = DNSLookup(
        PropagationSettings(resolvers=(bind.address,), nameserver_port=bind.port, propagation_timeout=10.0),
        clock=fake.clock,
        sleep=fake.sleep,
    )
    zone = lookup.zone_of("example.test")
    with pytest.raises(PropagationTimeout, match="after 10 s"):
        lookup.wait_served({"_acme-challenge.backoff.example.test.": (zone, frozenset({"never"}))})
    assert fake.sleeps[:3] == pytest.approx([0.05, 0.08, 0.128])
    assert max(fake.sleeps) == 2.0
    assert sum(fake.sleeps) == pytest.approx(10.0)


def test_the_settle_delay_follows_a_successful_check(bind: Bind, rfc2136_options: dict[str, Any]) -> None:
    fake = FakeTime()
    lookup = DNSLookup(
        PropagationSettings(resolvers=(bind.address,), nameserver_port=bind.port, settle_delay=7.0),
        clock=fake.clock,
        sleep=fake.sleep,
    )
    dns01 = DNS01Solver(RFC2136Provider.from_options(rfc2136_options, env={}), lookup=lookup)
    batch = (challenge("settle.example.test", "value-settle"),)
    dns01.present(batch)
    dns01.wait_ready(batch)
    dns01.cleanup(batch)
    assert fake.sleeps == [7.0]
