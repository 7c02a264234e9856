"""--preferred-chain against a Pebble with an alternate root (PEBBLE_ALTERNATE_ROOTS=1)."""

from __future__ import annotations

import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from fixtures.lifecycle import standalone_spec

from certman.issuance.issue import issue


def _root_cns(pebble) -> list[str]:
    cns = []
    for index in (0, 1):
        response = requests.get(f"{pebble.management_url}/roots/{index}", verify=str(pebble.ca_bundle), timeout=10)
        response.raise_for_status()
        root = x509.load_pem_x509_certificate(response.content)
        cns.append(root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    return cns


def _top_issuer(fullchain_path) -> str:
    top = x509.load_pem_x509_certificates(fullchain_path.read_bytes())[-1]
    return top.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_without_a_preference_the_default_chain_is_stored(keystore, alternate_roots_pebble, agreed):
    default_root, _ = _root_cns(alternate_roots_pebble)

    result = issue(standalone_spec(alternate_roots_pebble, "default.example"), keystore, account=agreed)

    assert _top_issuer(result.live.fullchain) == default_root


def test_preferred_chain_picks_the_alternate_root(keystore, alternate_roots_pebble, agreed):
    _, alternate_root = _root_cns(alternate_roots_pebble)
    spec = standalone_spec(alternate_roots_pebble, "alternate.example", preferred_chain=alternate_root)

    result = issue(spec, keystore, account=agreed)

    assert _top_issuer(result.live.fullchain) == alternate_root
    assert _top_issuer(result.live.chain) == alternate_root
    assert keystore.read_spec("alternate.example").preferred_chain == alternate_root


def test_an_unknown_preferred_chain_keeps_the_default(keystore, alternate_roots_pebble, agreed):
    default_root, _ = _root_cns(alternate_roots_pebble)
    spec = standalone_spec(alternate_roots_pebble, "unknown.example", preferred_chain="No Such Root")

    result = issue(spec, keystore, account=agreed)

    assert _top_issuer(result.live.fullchain) == default_root
