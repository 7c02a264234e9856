"""Issue 12 kind 4: every valid identifier has a valid default name; Let's Encrypt's policy is local.

What Let's Encrypt refuses (single-label and reserved names, IP addresses outside the
shortlived profile or not global, more than 25 names with a short profile) is refused
before any request, whether it is the certificate's CA or one of its fallbacks. Other
CAs get the syntax checks only.
"""

from __future__ import annotations

import json

import pytest
import services
from drivers.store_version import self_signed
from fixtures.cli import CertmanRun, issue_flags
from fixtures.fault_proxy import FaultProxy

from certman.ca.policy import check_policy
from certman.config import SERVER_ALIASES, CertSpec, SolverSpec
from certman.errors import UsageError
from certman.keystore import FileKeystore
from certman.names import check_cert_name, default_cert_name, normalise, normalise_all

LE = SERVER_ALIASES["letsencrypt"]
LE_STAGING = SERVER_ALIASES["letsencrypt-staging"]


@pytest.mark.parametrize(
    "identifier, name",
    [
        ("::1", "0--1"),  # the issue's input
        ("::", "0--"),
        ("::ffff:192.0.2.1", "0--ffff-c000-201"),
        ("2001:db8::1", "2001-db8--1"),
        ("192.0.2.1", "192.0.2.1"),
        ("*.Example.com.", "_.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("localhost", "localhost"),
    ],
)
def test_the_default_name_of_any_valid_identifier_is_a_valid_name(identifier: str, name: str) -> None:
    assert default_cert_name(normalise_all([identifier])) == name
    assert check_cert_name(name) == name


@pytest.mark.parametrize(
    "raw, said",
    [
        ("fe80::1%eth0", "IPv6 zone"),  # parsed as an address with a zone, then named 'fe80--1%eth0'
        ("192.0.2.1.", "cannot be all digits"),  # was the DNS name '192.0.2.1'
        ("host.123", "cannot be all digits"),
    ],
)
def test_identifiers_no_ca_could_accept_are_refused(raw: str, said: str) -> None:
    with pytest.raises(UsageError, match=said):
        normalise(raw)


def test_a_trailing_dot_names_the_same_certificate() -> None:
    assert default_cert_name(normalise_all(["www.example.com."])) == default_cert_name(
        normalise_all(["www.example.com"])
    )


@pytest.mark.parametrize(
    "names, profile, said",
    [
        (["localhost"], None, "single-label name 'localhost'"),  # the issue's inputs
        (["x"], None, "single-label name 'x'"),
        (["printer.local"], None, ".local is a reserved"),
        (["a.test"], None, ".test is a reserved"),
        (["*.corp.internal"], None, ".internal is a reserved"),
        (["nas.home.arpa"], None, ".home.arpa is a reserved"),
        (["8.8.8.8"], None, "only with the shortlived profile"),
        (["8.8.8.8"], "classic", "only with the shortlived profile"),
        (["192.168.1.10"], "shortlived", "not a globally routable address"),
        (["2001:db8::1"], "shortlived", "not a globally routable address"),
        ([f"n{i}.example.com" for i in range(26)], "tlsserver", "at most 25 with the tlsserver profile"),
    ],
)
def test_lets_encrypt_refusals_are_local(names: list[str], profile: str | None, said: str) -> None:
    for url in (LE, LE_STAGING):
        with pytest.raises(UsageError, match=said) as caught:
            check_policy(normalise_all(names), profile, [url])
        assert caught.value.hint


@pytest.mark.parametrize(
    "names, profile",
    [(["www.example.com"], None), (["8.8.8.8", "2606:4700:4700::1111"], "shortlived"), (["*.example.org"], "classic")],
)
def test_lets_encrypt_accepts_what_its_policy_allows(names: list[str], profile: str | None) -> None:
    check_policy(normalise_all(names), profile, [LE])


def test_other_cas_get_syntax_checks_only() -> None:
    check_policy(normalise_all(["localhost", "x", "192.168.1.10"]), None, ["https://ca.internal/acme/directory"])


@pytest.mark.parametrize("server", ["letsencrypt", "letsencrypt-staging", LE])
def test_issue_for_a_single_label_name_at_lets_encrypt_is_exit_2_with_a_hint(certman: CertmanRun, server: str) -> None:
    done = certman("issue", "localhost", "--server", server, "--agree-tos")

    assert done.exit_code == 2, done.output
    assert "certman: Let's Encrypt" in done.output
    assert "hint: use a fully qualified public name, or a private CA (--server)" in done.output


def test_a_lets_encrypt_fallback_refuses_before_the_first_ca_is_asked(
    certman: CertmanRun, fault_proxy: FaultProxy
) -> None:
    ca = ["--server", fault_proxy.directory_url, "--ca-bundle", str(fault_proxy.ca_bundle), "--agree-tos"]

    done = certman("issue", "x", *ca, "--fallback-server", "letsencrypt-staging")

    assert done.exit_code == 2, done.output
    assert "single-label name 'x'" in done.output
    with fault_proxy.lock:
        assert fault_proxy.seen == []


def test_an_ipv6_literal_is_issued_under_its_default_name(certman: CertmanRun, pebble: services.Pebble) -> None:
    flags = issue_flags(pebble)
    address = flags.index("--http-address")
    del flags[address : address + 2]  # every address: Pebble validates ::1 over IPv6

    done = certman("issue", "::1", *flags)

    assert done.exit_code == 0, done.output
    assert (certman.keystore / "live" / "0--1" / "fullchain.pem").is_file()


def test_renew_and_doctor_refuse_a_stored_certificate_lets_encrypt_would_refuse(certman: CertmanRun) -> None:
    spec = CertSpec(
        name="printer", identifiers=normalise_all(["printer.local"]), server=LE, solvers=(SolverSpec("standalone"),)
    )
    key_pem, cert_pem, meta = self_signed("printer.local")
    FileKeystore(certman.keystore).store_version(spec, key_pem, cert_pem, cert_pem, meta)

    renewed = certman("renew", "--force", "--json")
    doctor = certman("doctor", "--http-address", "127.0.0.1", "--http-port", str(services.free_port()))

    [result] = json.loads(renewed.stdout)["certificates"]
    assert (result["action"], result["error"]) == (
        "failed",
        f"Let's Encrypt ({LE}) does not issue for 'printer.local': .local is a reserved, non-public domain",
    )
    said = "FAIL  certificate printer: Let's Encrypt"
    assert any(line.startswith(said) for line in doctor.stdout.splitlines()), doctor.stdout
