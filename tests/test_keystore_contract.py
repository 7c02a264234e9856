"""Every Keystore implementation keeps the contract (behaviours in tests/keystore_contract.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import keystore_contract
import pytest

from certman.keystore import FileKeystore, Keystore


@pytest.fixture(params=["file", "postgres"])
def implementation(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Keystore]:
    """A fresh, empty store of each implementation, with a short lock timeout."""
    if request.param == "file":
        yield FileKeystore(tmp_path / "ks", lock_timeout=0.2)
    elif request.param == "postgres":
        from certman.fleet.admin import initialise
        from certman.fleet.fleet_key import FleetKey
        from certman.fleet.store import PostgresKeystore

        dsn = request.getfixturevalue("fleet_dsn")
        key = FleetKey.create(tmp_path / "fleet.key")
        initialise(dsn, key)
        store = PostgresKeystore(dsn, key, host_id="contract-host", lock_timeout=0.2)
        yield store
        store.close()


@pytest.mark.parametrize("behaviour", keystore_contract.BEHAVIOURS, ids=lambda b: b.__name__)
def test_the_contract(implementation: Keystore, behaviour: Callable[[Keystore], None]) -> None:
    behaviour(implementation)
