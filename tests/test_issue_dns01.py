"""DNS-01 issuance end to end: our provider writes to a real BIND, Pebble validates against it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import services
from acme import messages
from fixtures.bind import DELEGATED_NAME, DELEGATION_TARGET, HTTP01_NAME, Bind
from fixtures.dns01 import exec_hook_env

from certman.ca.accounts import AccountSettings, open_session
from certman.config import CertSpec, SolverSpec
from certman.errors import PropagationTimeout
from certman.issuance.issue import issue, solve
from certman.keys import generate_key, make_csr
from certman.keystore import FileKeystore
from certman.names import normalise_all
from certman.solvers.dns01 import DNS01Solver
from certman.solvers.dns01.exec import ExecProvider, ExecSettings
from certman.solvers.dns01.propagation import PropagationSettings
from certman.solvers.dns01.rfc2136 import RFC2136Provider

ACCOUNT = AccountSettings(agree_tos=True)


def spec(pebble: services.Pebble, names: list[str], *solvers: SolverSpec) -> CertSpec:
    identifiers = normalise_all(names)
    return CertSpec(
        name=identifiers[0].value.lstrip("*."),
        identifiers=identifiers,
        server=pebble.directory_url,
        solvers=solvers,
        ca_bundle=str(pebble.ca_bundle),
    )


def rfc2136_solver(
    rfc2136_options: dict[str, Any], propagation_options: dict[str, Any], match: tuple[str, ...] = ()
) -> SolverSpec:
    return SolverSpec("dns-01", {"provider": "rfc2136", **rfc2136_options, **propagation_options}, match)


class WatchingProvider:
    """Wraps the real provider and records what BIND serves just before each removal, i.e. after validation."""

    def __init__(self, inner: RFC2136Provider, bind: Bind) -> None:
        self.inner = inner
        self.bind = bind
        self.served_before_cleanup: dict[str, set[str]] = {}

    def add_txt(self, fqdn: str, value: str) -> None:
        self.inner.add_txt(fqdn, value)

    def remove_txt(self, fqdn: str, value: str) -> None:
        self.served_before_cleanup[fqdn] = self.bind.txt(fqdn)
        self.inner.remove_txt(fqdn, value)


def test_wildcard_and_apex_are_issued_together(
    tmp_path: Path,
    dns_pebble: services.Pebble,
    bind: Bind,
    rfc2136_options: dict[str, Any],
    propagation_options: dict[str, Any],
) -> None:
    cert = spec(
        dns_pebble,
        ["wildapex.example.test", "*.wildapex.example.test"],
        rfc2136_solver(rfc2136_options, propagation_options),
    )
    result = issue(cert, FileKeystore(tmp_path / "ks"), account=ACCOUNT)
    assert set(result.identifiers) == {"wildapex.example.test", "*.wildapex.example.test"}
    assert bind.txt("_acme-challenge.wildapex.example.test") == set()


def test_an_inline_tsig_secret_is_not_written_to_the_stored_spec(
    tmp_path: Path, dns_pebble: services.Pebble, rfc2136_options: dict[str, Any], propagation_options: dict[str, Any]
) -> None:
    keystore = FileKeystore(tmp_path / "ks")
    cert = spec(dns_pebble, ["inline.example.test"], rfc2136_solver(rfc2136_options, propagation_options))
    issue(cert, keystore, account=ACCOUNT)
    stored = (keystore.layout.spec(cert.name)).read_text()
    assert rfc2136_options["key_secret"] not in stored
    assert "key_secret" not in stored and 'key_name = "' in stored


def test_the_record_is_served_while_the_ca_validates_and_gone_afterwards(
    tmp_path: Path,
    dns_pebble: services.Pebble,
    bind: Bind,
    rfc2136_options: dict[str, Any],
    propagation_options: dict[str, Any],
) -> None:
    keystore = FileKeystore(tmp_path / "ks")
    cert = spec(dns_pebble, ["watched.example.test"], rfc2136_solver(rfc2136_options, propagation_options))
    watcher = WatchingProvider(RFC2136Provider.from_options(rfc2136_options, env={}), bind)
    dns01 = DNS01Solver(watcher, PropagationSettings(resolvers=(bind.address,), nameserver_port=bind.port))
    session = open_session(cert.directory_url, keystore, ACCOUNT, ca_bundle=cert.ca_bundle, timeout=30)
    order = session.new_order(cert.identifiers, make_csr(generate_key(cert.key_type), cert.identifiers))
    solve(session, cert, [dns01], order)
    served = watcher.served_before_cleanup["_acme-challenge.watched.example.test."]
    assert len(served) == 1
    assert all(session.fetch_authorization(a.uri).body.status == messages.STATUS_VALID for a in order.authorizations)
    assert bind.txt("_acme-challenge.watched.example.test") == set()


def test_a_cname_delegated_challenge_name_is_validated_at_its_target(
    tmp_path: Path,
    dns_pebble: services.Pebble,
    bind: Bind,
    rfc2136_options: dict[str, Any],
    propagation_options: dict[str, Any],
) -> None:
    cert = spec(dns_pebble, [DELEGATED_NAME], rfc2136_solver(rfc2136_options, propagation_options))
    result = issue(cert, FileKeystore(tmp_path / "ks"), account=ACCOUNT)
    assert result.identifiers == (DELEGATED_NAME,)
    assert bind.txt(DELEGATION_TARGET) == set()


def test_wildcards_can_use_dns01_while_other_names_use_http01(
    tmp_path: Path, dns_pebble: services.Pebble, rfc2136_options: dict[str, Any], propagation_options: dict[str, Any]
) -> None:
    cert = spec(
        dns_pebble,
        [HTTP01_NAME, f"*.{HTTP01_NAME}"],
        rfc2136_solver(rfc2136_options, propagation_options, match=(f"*.{HTTP01_NAME}",)),
        SolverSpec("standalone", {"address": "127.0.0.1", "port": dns_pebble.http_port}),
    )
    assert cert.solver_for(cert.identifiers[0]).name == "standalone"
    result = issue(cert, FileKeystore(tmp_path / "ks"), account=ACCOUNT)
    assert set(result.identifiers) == {HTTP01_NAME, f"*.{HTTP01_NAME}"}


def test_a_record_that_never_propagates_answers_no_challenge(
    tmp_path: Path, dns_pebble: services.Pebble, bind: Bind
) -> None:
    keystore = FileKeystore(tmp_path / "ks")
    cert = spec(dns_pebble, ["lost.example.test"], SolverSpec("dns-01", {"provider": "exec"}))
    # A provider that reports success but writes nothing anywhere.
    silent = ExecProvider(ExecSettings(program="/bin/true"))
    dns01 = DNS01Solver(
        silent, PropagationSettings(resolvers=(bind.address,), nameserver_port=bind.port, propagation_timeout=0.5)
    )
    session = open_session(cert.directory_url, keystore, ACCOUNT, ca_bundle=cert.ca_bundle, timeout=30)
    order = session.new_order(cert.identifiers, make_csr(generate_key(cert.key_type), cert.identifiers))
    with pytest.raises(PropagationTimeout, match="ns1.example.test"):
        solve(session, cert, [dns01], order)
    for authz in order.authorizations:
        body = session.fetch_authorization(authz.uri).body
        assert body.status == messages.STATUS_PENDING
        assert all(c.status == messages.STATUS_PENDING for c in body.challenges)


def test_the_exec_provider_runs_the_operators_program(
    tmp_path: Path,
    dns_pebble: services.Pebble,
    bind: Bind,
    exec_hook: Path,
    propagation_options: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in exec_hook_env(bind).items():
        monkeypatch.setenv(name, value)
    cert = spec(
        dns_pebble,
        ["hooked.example.test"],
        SolverSpec("dns-01", {"provider": "exec", "program": str(exec_hook), **propagation_options}),
    )
    result = issue(cert, FileKeystore(tmp_path / "ks"), account=ACCOUNT)
    assert result.identifiers == ("hooked.example.test",)
    assert bind.txt("_acme-challenge.hooked.example.test") == set()
    assert os.path.exists(result.live.fullchain)
