"""Storing many certificates at once (what `renew --jobs N` does) never trips over a neighbour."""

from __future__ import annotations

import concurrent.futures
import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from certman.config import CertSpec, SolverSpec
from certman.keys import key_to_pem
from certman.keystore import FileKeystore, VersionMeta
from certman.names import normalise_all

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
COUNT = 150


def self_signed(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key_to_pem(key), cert.public_bytes(Encoding.PEM)


def test_concurrent_stores_of_different_certificates_all_go_live(tmp_path: Path):
    keystore = FileKeystore(tmp_path / "ks")

    def store(i: int) -> None:
        name = f"c{i}.example"
        spec = CertSpec(
            name=name,
            identifiers=normalise_all([name]),
            server="https://ca.example/dir",
            solvers=(SolverSpec("webroot", {"path": "/srv"}),),
        )
        key_pem, leaf_pem = self_signed(name)
        with keystore.lock_cert(name):
            meta = VersionMeta(str(i), T0, T0 + datetime.timedelta(days=1))
            keystore.store_version(spec, key_pem, leaf_pem, b"", meta)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(store, range(COUNT)))
    assert len(keystore.read_index()) == COUNT
    assert all(keystore.live(f"c{i}.example").fullchain.exists() for i in range(COUNT))
