"""The TLS-ALPN-01 solver: what it serves, and a real validation by Pebble on its tlsPort."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl

import pytest
import services
from click.testing import CliRunner
from cryptography import x509

from certman.cli import cli
from certman.config import CertSpec, SolverSpec
from certman.errors import SolverError, UsageError
from certman.issuance.issue import issue
from certman.names import Identifier, normalise_all
from certman.solvers import Challenge
from certman.solvers.tlsalpn01 import ACME_IDENTIFIER_OID, TLSALPN01Solver


def _handshake(port: int, server_name: str) -> tuple[x509.Certificate, str | None]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["acme-tls/1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)), tls.selected_alpn_protocol()


@pytest.fixture
def solver():
    solver = TLSALPN01Solver.from_options({"address": "127.0.0.1", "port": services.free_port()})
    yield solver
    solver.cleanup(())


def _challenge(value: str, kind: str = "dns") -> Challenge:
    return Challenge(Identifier(kind, value), "tls-alpn-01", "tok", f"tok.thumb-{value}")


def test_serves_the_acme_identifier_certificate_for_the_sni_name(solver):
    batch = (_challenge("a.example"), _challenge("b.example"))
    solver.present(batch)

    cert, alpn = _handshake(solver.port, "b.example")

    assert alpn == "acme-tls/1"
    extension = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    assert extension.critical
    assert extension.value.value == b"\x04\x20" + hashlib.sha256(b"tok.thumb-b.example").digest()
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["b.example"]


def test_refuses_a_name_outside_the_batch(solver):
    solver.present((_challenge("a.example"),))

    with pytest.raises(ssl.SSLError):
        _handshake(solver.port, "other.example")


def test_cleanup_stops_the_server(solver):
    solver.present((_challenge("a.example"),))
    port = solver.port

    solver.cleanup(())

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_a_port_in_use_is_a_solver_error_naming_it():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        solver = TLSALPN01Solver.from_options({"address": "127.0.0.1", "port": port})

        with pytest.raises(SolverError, match=f"127.0.0.1:{port} is already in use"):
            solver.present((_challenge("a.example"),))
        solver.cleanup(())


def test_a_wildcard_is_refused():
    solver = TLSALPN01Solver.from_options({"port": services.free_port()})

    with pytest.raises(UsageError, match="wildcard"):
        solver.present((_challenge("*.example.org"),))


def test_pebble_validates_through_tls_alpn_01(keystore, pebble, agreed):
    spec = CertSpec(
        name="alpn.example",
        identifiers=normalise_all(["alpn.example", "www.alpn.example"]),
        server=pebble.directory_url,
        ca_bundle=str(pebble.ca_bundle),
        solvers=(SolverSpec("tls-alpn-01", {"address": "127.0.0.1", "port": pebble.tls_port}),),
    )

    result = issue(spec, keystore, account=agreed, timeout=60)

    assert set(result.identifiers) == {"alpn.example", "www.alpn.example"}
    assert pebble.cert_status(result.serial)["Status"] == "Valid"


def test_cli_issue_with_the_tls_alpn_01_solver(tmp_path, pebble):
    result = CliRunner().invoke(
        cli,
        [
            "--keystore",
            str(tmp_path / "ks"),
            "issue",
            "--server",
            pebble.directory_url,
            "--ca-bundle",
            str(pebble.ca_bundle),
            "--agree-tos",
            "--solver",
            "tls-alpn-01",
            "--tls-address",
            "127.0.0.1",
            "--tls-port",
            str(pebble.tls_port),
            "--json",
            "cli-alpn.example",
        ],
    )

    assert result.exit_code == 0, result.output
    assert pebble.cert_status(json.loads(result.stdout)["serial"])["Status"] == "Valid"
