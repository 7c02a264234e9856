"""Store one new version of ``a.example`` in KEYSTORE: the unit the crash tests kill.

Run as ``python store_version.py KEYSTORE [NAME [order]]`` (NAME: a.example). With
``order``, it goes as issuance does after the CA answered: keep the order, store the
version, then remove the finished order. The key and a
self-signed certificate are made before anything touches the keystore, so a fault
injected into the keystore's syscalls lands inside ``FileKeystore.store_version``. Exits like certman:
0, or the error's exit code after ``certman: <message>`` on stderr.
"""

from __future__ import annotations

import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from certman.config import CertSpec, SolverSpec
from certman.errors import CertmanError
from certman.keys import CertFacts, generate_key, key_to_pem
from certman.keystore import FileKeystore, VersionMeta
from certman.keystore.pending import PendingOrder
from certman.names import normalise_all


def self_signed(name: str) -> tuple[bytes, bytes, VersionMeta]:
    key = generate_key("ecdsa-p256")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    facts = CertFacts.of(cert)
    # The facts issuance records, so tests can tell versions apart and plan renewals from them.
    meta = VersionMeta(facts.serial, facts.not_before, facts.not_after, issuer=facts.issuer)
    return key_to_pem(key), cert.public_bytes(Encoding.PEM), meta


def main(root: str, name: str = "a.example", mode: str = "") -> int:
    spec = CertSpec(
        name=name,
        identifiers=normalise_all([name]),
        server="https://127.0.0.1:1/dir",
        solvers=(SolverSpec("standalone"),),
    )
    key_pem, cert_pem, meta = self_signed(name)
    # store_version imports tomli_w lazily; importing it here first keeps a possible
    # __pycache__ write (write + rename) out of the syscalls the crash tests count.
    import tomli_w  # noqa: F401

    try:
        keystore = FileKeystore(root)
        if mode == "order":
            from certman.issuance.issue import past_commit_errors
            from certman.keystore.past_commit import pending_order_left

            order = PendingOrder("https://127.0.0.1:1/order/1", spec.server, (name,), meta.not_before, key_pem)
            keystore.write_pending_order(name, order)
            stored = keystore.store_version(spec, key_pem, cert_pem, cert_pem, meta)
            left = pending_order_left(keystore.layout.cert_dir(name))
            with past_commit_errors(name, stored.version, keystore.layout.live_link(name), left):
                keystore.clear_pending_order(name)
        else:
            keystore.store_version(spec, key_pem, cert_pem, cert_pem, meta)
    except CertmanError as exc:
        print(f"certman: {exc.message}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
