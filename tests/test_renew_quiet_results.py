"""A no-op renew makes no result for a certificate its digest says is quiet until one is
shown (issue 15): the human output folds them into one line past twenty, lists each of
them below that, and ``--json`` still has one result per certificate, as a run that
planned each from its state.json gives. Offline: nothing is due, the CA is never asked."""

from __future__ import annotations

import json

from fixtures.cli import CertmanRun
from fixtures.listing import store

from certman.keystore import FileKeystore


def _stored(certman: CertmanRun, count: int) -> list[str]:
    keystore = FileKeystore(certman.keystore)
    names = [f"host{i}.example" for i in range(count)]
    for name in names:
        store(keystore, name, [name], 10, 90)
    return names


def test_a_run_from_the_digests_folds_past_twenty_quiet_certificates_into_one_line(certman: CertmanRun):
    _stored(certman, 21)
    certman("renew")  # notes the digests

    out = certman("renew").output

    assert "host0.example" not in out
    assert "21 ok certificate(s) not listed; the first renews" in out
    assert "21 certificate(s): 21 ok" in out


def test_a_run_from_the_digests_lists_each_of_a_few_quiet_certificates(certman: CertmanRun):
    names = _stored(certman, 3)
    certman("renew")

    out = certman("renew").output

    assert all(name in out for name in names)
    assert "not listed" not in out
    assert "3 certificate(s): 3 ok" in out


def test_a_run_from_the_digests_gives_the_json_of_a_run_from_the_state_files(certman: CertmanRun):
    _stored(certman, 21)
    first = json.loads(certman("renew", "--json").output)["certificates"]

    second = json.loads(certman("renew", "--json").output)["certificates"]

    assert second == first
    assert all(r["reason"].startswith("not due until") for r in second)
