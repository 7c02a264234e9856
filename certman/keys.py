"""Private keys, CSRs and the few X.509 facts certman reads back from certificates."""

from __future__ import annotations

import base64
import datetime
import ipaddress

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from .config import check_key_type
from .errors import KeystoreError, UsageError
from .names import Identifier

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def generate_key(key_type: str) -> PrivateKey:
    """A fresh private key of one of config.KEY_TYPES."""
    check_key_type(key_type)
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))


def key_to_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise UsageError(f"unsupported key algorithm {type(key).__name__}")
    return key


def make_csr(key: PrivateKey, identifiers: tuple[Identifier, ...]) -> bytes:
    """A CSR carrying every identifier as a SAN; no CN, as Let's Encrypt's newer profiles omit it."""
    sans: list[x509.GeneralName] = []
    for ident in identifiers:
        if ident.type == "ip":
            sans.append(x509.IPAddress(ipaddress.ip_address(ident.value)))
        else:
            sans.append(x509.DNSName(ident.value))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def split_pem_chain(fullchain_pem: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(fullchain_pem.encode())
    except ValueError as exc:
        raise KeystoreError("the CA returned a certificate chain that does not parse as PEM") from exc
    return certs


class CertFacts(msgspec.Struct, frozen=True):
    """What the keystore index and the CLI show about a leaf certificate."""

    serial: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    issuer: str
    identifiers: tuple[str, ...]
    ari_cert_id: str | None

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertFacts:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            idents = tuple(
                [
                    *san.get_values_for_type(x509.DNSName),
                    *(ip.compressed for ip in san.get_values_for_type(x509.IPAddress)),
                ]
            )
        except x509.ExtensionNotFound:
            idents = ()
        return cls(
            serial=format(cert.serial_number, "x"),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            issuer=_issuer_name(cert),
            identifiers=idents,
            ari_cert_id=ari_cert_id(cert),
        )


def _issuer_name(cert: x509.Certificate) -> str:
    cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else cert.issuer.rfc4514_string()


def ari_cert_id(cert: x509.Certificate) -> str | None:
    """RFC 9773 §4.1 CertID: base64url(AKI keyIdentifier) '.' base64url(DER serial), unpadded."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    if aki.key_identifier is None:
        return None
    serial = cert.serial_number
    serial_bytes = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    return f"{b64(aki.key_identifier)}.{b64(serial_bytes)}"


def public_keys_match(key: PrivateKey, cert: x509.Certificate) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(serialization.Encoding.DER, fmt) == cert.public_key().public_bytes(
        serialization.Encoding.DER, fmt
    )
