"""The fleet protocol on a real PostgreSQL 15: leases with fencing tokens and the fenced commit.

Hosts are ``PostgresKeystore`` objects with their own connections and host ids, as
three machines would be. Lease expiry is the server's clock alone, so tests wait for
the server to say a lease has expired (polling, never a fixed sleep).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import keystore_contract
import postgres_service
import pytest
import services

from certman.errors import KeystoreError, StoreUnavailable
from certman.fleet.admin import initialise, status
from certman.fleet.fleet_key import FleetKey
from certman.fleet.protocol import FleetProtocol, Lease, LeaseLost
from certman.fleet.store import PostgresKeystore

NAME = keystore_contract.NAME


@pytest.fixture
def fleet(fleet_dsn: str, tmp_path: Path) -> Iterator[tuple[str, FleetKey, list[PostgresKeystore]]]:
    key = FleetKey.create(tmp_path / "fleet.key")
    initialise(fleet_dsn, key)
    opened: list[PostgresKeystore] = []
    yield fleet_dsn, key, opened
    for store in opened:
        store.close()


def host(fleet: tuple[str, FleetKey, list[PostgresKeystore]], host_id: str) -> FleetProtocol:
    dsn, key, opened = fleet
    store = PostgresKeystore(dsn, key, host_id=host_id, lock_timeout=1.0)
    opened.append(store)
    return FleetProtocol(store)


def expired(protocol: FleetProtocol, lease: Lease) -> bool:
    with protocol.store.transaction("test") as cursor:
        cursor.execute("SELECT expires_at <= clock_timestamp() FROM leases WHERE name = %s", (lease.name,))
        return bool(cursor.fetchone()[0])


def commit(protocol: FleetProtocol, lease: Lease, expected: int, serial: str) -> str | None:
    key_pem, leaf_pem, meta = keystore_contract.material(serial)
    stored = protocol.commit(lease, expected, keystore_contract.spec(), key_pem, leaf_pem, b"", meta)
    return None if stored is None else stored.version


def test_one_winner_per_round_and_the_token_only_grows(fleet: tuple[str, FleetKey, list[PostgresKeystore]]) -> None:
    hosts = [host(fleet, f"host-{i}") for i in range(8)]
    for h in hosts:
        h.store.check()
    tokens = []
    for _ in range(10):
        barrier = threading.Barrier(len(hosts))
        won: list[Lease] = []

        def race(h: FleetProtocol, barrier: threading.Barrier, won: list[Lease]) -> None:
            barrier.wait()
            lease = h.try_lease(NAME, ttl=60)
            if lease is not None:
                won.append(lease)

        threads = [threading.Thread(target=race, args=(h, barrier, won)) for h in hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1
        tokens.append(won[0].token)
        # The winner releases, so the next round races again for a free lease.
        next(h for h in hosts if h.store.host_id == won[0].holder).release(won[0])
    assert tokens == list(range(1, 11))


def test_a_stalled_holder_cannot_commit_over_the_one_that_took_over(
    fleet: tuple[str, FleetKey, list[PostgresKeystore]],
) -> None:
    a, b = host(fleet, "host-a"), host(fleet, "host-b")
    keystore_contract.store(a.store, "01")
    assert a.manifest(NAME) is not None and a.manifest(NAME).version == 1  # type: ignore[union-attr]
    stalled = a.try_lease(NAME, ttl=0.5)
    assert stalled is not None and b.try_lease(NAME) is None
    services.wait_for(lambda: expired(b, stalled), what="the server to expire host-a's lease")
    assert not a.renew_lease(stalled)
    taker = b.try_lease(NAME, ttl=60)
    assert taker is not None and taker.token == stalled.token + 1
    assert commit(b, taker, 1, "02") == "000002"
    # host-a wakes up with its order done: its commit changes nothing, whatever it expects.
    assert commit(a, stalled, 1, "03") is None
    assert commit(a, stalled, 2, "03") is None
    assert a.manifest(NAME).fence == taker.token  # type: ignore[union-attr]
    assert a.store.read_index()[NAME].serial == "02" and a.store.versions(NAME) == ["000001", "000002"]
    # The winner's own commit is fenced by version: a second commit expecting 1 loses too.
    assert commit(b, taker, 1, "04") is None


def test_a_lease_that_expired_unclaimed_still_cannot_commit(
    fleet: tuple[str, FleetKey, list[PostgresKeystore]],
) -> None:
    a = host(fleet, "host-a")
    keystore_contract.store(a.store, "01")
    lease = a.try_lease(NAME, ttl=0.3)
    assert lease is not None
    services.wait_for(lambda: expired(a, lease), what="the lease to expire")
    assert commit(a, lease, 1, "02") is None
    again = a.try_lease(NAME, ttl=60)
    assert again is not None and again.token == lease.token + 1
    assert commit(a, again, 1, "02") == "000002"


def test_the_keeper_renews_the_lease_and_reports_its_loss(
    fleet: tuple[str, FleetKey, list[PostgresKeystore]], postgres: postgres_service.Postgres, fleet_dsn: str
) -> None:
    a, b = host(fleet, "host-a"), host(fleet, "host-b")
    lease = a.try_lease(NAME, ttl=0.6)
    assert lease is not None
    with a.keeping(lease) as keeper:
        with a.store.transaction("test") as cursor:
            cursor.execute("SELECT clock_timestamp() + interval '0.9 seconds'")
            past_first_ttl = cursor.fetchone()[0]

        def later() -> bool:
            with b.store.transaction("test") as cursor:
                cursor.execute("SELECT clock_timestamp() > %s", (past_first_ttl,))
                return bool(cursor.fetchone()[0])

        services.wait_for(later, what="the server clock to pass the first expiry")
        assert b.try_lease(NAME) is None
        keeper.check()
        # A stall on host-a's side, as the server sees it: the lease runs out and host-b takes it.
        postgres.admin(
            f"UPDATE leases SET expires_at = clock_timestamp() WHERE name = '{NAME}'", fleet_dsn.rsplit("/", 1)[1]
        )
        assert b.try_lease(NAME, ttl=60) is not None
        services.wait_for(keeper.lost.is_set, what="the keeper to notice")
        with pytest.raises(LeaseLost):
            keeper.check()


def test_status_shows_the_lease_and_installs(fleet: tuple[str, FleetKey, list[PostgresKeystore]]) -> None:
    a = host(fleet, "host-a")
    a.record_install(NAME, keystore_contract.store(a.store, "01"))
    lease = a.try_lease(NAME)
    assert lease is not None
    (row,) = status(fleet[0])
    assert (row.name, row.version, row.lease_holder, row.lease_token, row.lease_held) == (
        NAME,
        "000001",
        "host-a",
        lease.token,
        True,
    )
    assert row.installs == {"host-a": "000001"}


def test_a_wrong_key_is_refused_before_anything_is_written(
    fleet: tuple[str, FleetKey, list[PostgresKeystore]], tmp_path: Path
) -> None:
    dsn, _, opened = fleet
    wrong = PostgresKeystore(dsn, FleetKey.create(tmp_path / "wrong.key"), host_id="host-x")
    opened.append(wrong)
    with pytest.raises(KeystoreError, match="wrong.key"):
        wrong.write_spec(keystore_contract.spec())
    assert host(fleet, "host-a").store.names() == [] and status(dsn) == []


def test_a_restarted_or_unreachable_store_fails_loudly_and_the_next_call_recovers(tmp_path: Path) -> None:
    with postgres_service.start_postgres() as server:
        database = server.new_database()
        dsn = server.dsn(database) + f"?password={postgres_service.ROLE_PASSWORD}"
        key = FleetKey.create(tmp_path / "fleet.key")
        initialise(dsn, key)
        store = PostgresKeystore(dsn, key, host_id="host-a")
        keystore_contract.store(store, "01")
        server.stop()
        with pytest.raises(StoreUnavailable) as raised:
            store.read_index()
        assert postgres_service.ROLE_PASSWORD not in str(raised.value) and raised.value.exit_code == 8
        with pytest.raises(StoreUnavailable):
            store.read_index()
        server.start()
        assert list(store.read_index()) == [NAME]
        store.close()
