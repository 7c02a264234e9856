"""Choosing among the certificate chains a CA offers (RFC 8555 §7.4.2 "alternate" links)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)


def _issuer_cn(cert: x509.Certificate) -> str | None:
    names = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def pick_chain(chains: Sequence[str], preferred_issuer: str) -> str:
    """The chain whose topmost certificate was issued by ``preferred_issuer`` (a CN), else any
    chain with a certificate issued by it, else the CA's default (the first).

    A missing preferred chain is not an error: CAs retire chains, and a renewal
    must not fail because of it (certbot and lego behave the same).
    """
    parsed = [(pem, x509.load_pem_x509_certificates(pem.encode())) for pem in chains]
    for pem, certs in parsed:
        if certs and _issuer_cn(certs[-1]) == preferred_issuer:
            return pem
    for pem, certs in parsed:
        if any(_issuer_cn(c) == preferred_issuer for c in certs):
            return pem
    log.warning("the CA offers no chain issued by %r; keeping its default chain", preferred_issuer)
    return chains[0]
