"""Storing many certificates at once (what `renew --jobs N` does) never trips over a neighbour."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from drivers.store_version import self_signed

from certman.config import CertSpec, SolverSpec
from certman.keystore import FileKeystore
from certman.names import normalise_all

COUNT = 150


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
        key_pem, leaf_pem, meta = self_signed(name)
        with keystore.lock_cert(name):
            keystore.store_version(spec, key_pem, leaf_pem, b"", meta)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(store, range(COUNT)))
    assert len(keystore.read_index()) == COUNT
    assert all(keystore.live(f"c{i}.example").fullchain.exists() for i in range(COUNT))
