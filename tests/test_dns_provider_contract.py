"""Every registered DNS provider keeps the same contract, observed on the real BIND that serves the zone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures.bind import FILE_ZONE, Bind
from fixtures.dns01 import exec_hook_env

from certman.errors import SolverError
from certman.names import Identifier
from certman.plugins import registry as plugins
from certman.solvers import Challenge
from certman.solvers.dns01 import DNS01Solver, DNSProvider
from certman.solvers.dns01.propagation import PropagationSettings

OBSERVE_TIMEOUT = 10.0


@dataclass
class Harness:
    provider: DNSProvider
    zone: str
    served: Callable[[str], set[str]]

    def eventually_served(self, fqdn: str, expected: set[str]) -> set[str]:
        """What the server serves once it matches ``expected`` or the bounded wait ends."""
        deadline = time.monotonic() + OBSERVE_TIMEOUT
        while True:
            values = self.served(fqdn)
            if values == expected or time.monotonic() > deadline:
                return values
            time.sleep(0.05)


def _rfc2136(bind: Bind, tmp_path: Path, rfc2136_options: dict[str, Any], exec_hook: Path) -> Harness:
    provider = plugins.lookup("dns_providers", "rfc2136").from_options(rfc2136_options, {})
    return Harness(provider, "example.test", bind.txt)


def _exec(bind: Bind, tmp_path: Path, rfc2136_options: dict[str, Any], exec_hook: Path) -> Harness:
    provider = plugins.lookup("dns_providers", "exec").from_options({"program": str(exec_hook)}, exec_hook_env(bind))
    return Harness(provider, "example.test", bind.txt)


def _lexicon(bind: Bind, tmp_path: Path, rfc2136_options: dict[str, Any], exec_hook: Path) -> Harness:
    provider = plugins.lookup("dns_providers", "lexicon").from_options(
        {"provider_name": "localzone", "domain": FILE_ZONE, "options": {"filename": bind.file_zone_path}}, {}
    )

    def served(fqdn: str) -> set[str]:
        # localzone edits the zone file; BIND serves it after a reload, as a file-managed primary would.
        bind.reload_file_zone()
        return bind.txt(fqdn)

    return Harness(provider, FILE_ZONE, served)


HARNESSES = {"rfc2136": _rfc2136, "exec": _exec, "lexicon": _lexicon}


@pytest.fixture(params=sorted(plugins.available("dns_providers")))
def harness(
    request: pytest.FixtureRequest, bind: Bind, tmp_path: Path, rfc2136_options: dict[str, Any], exec_hook: Path
) -> Iterator[Harness]:
    name = request.param
    assert name in HARNESSES, f"DNS provider {name!r} is registered but has no contract harness here"
    yield HARNESSES[name](bind, tmp_path, rfc2136_options, exec_hook)


def test_present_is_visible_and_cleanup_makes_it_gone(harness: Harness) -> None:
    fqdn = f"_acme-challenge.contract.{harness.zone}."
    harness.provider.add_txt(fqdn, "contract-value")
    assert harness.eventually_served(fqdn, {"contract-value"}) == {"contract-value"}
    harness.provider.remove_txt(fqdn, "contract-value")
    assert harness.eventually_served(fqdn, set()) == set()


def test_two_values_at_one_name_coexist_and_are_removed_one_by_one(harness: Harness) -> None:
    fqdn = f"_acme-challenge.pair.{harness.zone}."
    harness.provider.add_txt(fqdn, "apex-value")
    harness.provider.add_txt(fqdn, "wildcard-value")
    assert harness.eventually_served(fqdn, {"apex-value", "wildcard-value"}) == {"apex-value", "wildcard-value"}
    harness.provider.remove_txt(fqdn, "apex-value")
    assert harness.eventually_served(fqdn, {"wildcard-value"}) == {"wildcard-value"}
    harness.provider.remove_txt(fqdn, "wildcard-value")
    assert harness.eventually_served(fqdn, set()) == set()


def test_cleanup_of_a_value_never_presented_is_harmless(harness: Harness) -> None:
    fqdn = f"_acme-challenge.failed.{harness.zone}."
    harness.provider.add_txt(fqdn, "kept")
    harness.provider.remove_txt(fqdn, "never-added")
    assert harness.eventually_served(fqdn, {"kept"}) == {"kept"}
    harness.provider.remove_txt(fqdn, "kept")


def test_cleanup_after_a_present_that_failed_halfway_removes_what_was_added(
    bind: Bind, rfc2136_options: dict[str, Any]
) -> None:
    provider = plugins.lookup("dns_providers", "rfc2136").from_options(rfc2136_options, {})
    dns01 = DNS01Solver(provider, PropagationSettings(resolvers=(bind.address,), nameserver_port=bind.port))
    # The TSIG key may update example.test but not the file-managed zone, so the second add is refused.
    batch = (
        Challenge(Identifier("dns", "halfway.example.test"), "dns-01", "t" * 43, "first"),
        Challenge(Identifier("dns", f"halfway.{FILE_ZONE}"), "dns-01", "t" * 43, "second"),
    )
    with pytest.raises(SolverError, match="REFUSED"):
        dns01.present(batch)
    assert bind.txt("_acme-challenge.halfway.example.test") == {"first"}
    dns01.cleanup(batch)
    assert bind.txt("_acme-challenge.halfway.example.test") == set()
