"""HTTP-01 in a fleet: the lease holder publishes its answers in the store, and every host's
``certman challenge-server`` answers them, so the CA may validate against any host.

Three challenge servers are three real ``certman challenge-server`` processes on
127.0.0.1, 127.0.0.2 and 127.0.0.3, each with its own host's certman.toml, sharing one
PostgreSQL store. challtestsrv points the name's A record at a host that did not
place the order.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
import services
from fixtures.fleet import CERTMAN, TIMER_ENV, WELL_KNOWN, Host, challenge_servers, issue

from certman.fleet import schema
from certman.fleet.admin import initialise
from certman.fleet.challenges import StoreTokenBoard
from certman.fleet.fleet_key import FleetKey
from certman.fleet.store import PostgresKeystore
from certman.keystore import FileKeystore
from certman.names import Identifier
from certman.solvers import Challenge

# Several hosts against PostgreSQL and Pebble: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

NAME = "http01.fleet.example"
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


def three_hosts(tmp_path: Path, dsn: str) -> list[Host]:
    key_file = tmp_path / "fleet.key"
    return [Host(tmp_path / h, dsn, key_file, h) for h in ("host-a", "host-b", "host-c")]


def each_on_its_address(hosts: list[Host]) -> list[tuple[Host, str]]:
    return list(zip(hosts, ADDRESSES, strict=False))


def answer(url: str, token: str) -> tuple[int, str]:
    response = requests.get(f"{url}{WELL_KNOWN}{token}", timeout=5)
    return response.status_code, response.text


def challenge(token: str, validation: str) -> Challenge:
    return Challenge(Identifier("dns", NAME), "http-01", token, validation)


@pytest.fixture
def board(fleet_dsn: str, tmp_path: Path) -> Iterator[StoreTokenBoard]:
    key = FleetKey.create(tmp_path / "fleet.key")
    initialise(fleet_dsn, key)
    store = PostgresKeystore(fleet_dsn, key, host_id="host-a")
    yield StoreTokenBoard(store)
    store.close()


def test_every_challenge_server_answers_exactly_the_tokens_in_flight(
    tmp_path: Path, fleet_dsn: str, board: StoreTokenBoard
) -> None:
    hosts = three_hosts(tmp_path, fleet_dsn)
    in_flight = (challenge("A" * 43, "A" * 43 + ".thumb"), challenge("b-_" * 10, "b-_" * 10 + ".thumb"))
    board.publish(in_flight)
    with challenge_servers(each_on_its_address(hosts), services.free_port()) as urls:
        for url in urls:
            for c in in_flight:
                assert answer(url, c.token) == (200, c.validation)
            assert answer(url, "C" * 43)[0] == 404
            assert answer(url, "../../etc/passwd")[0] == 404
        board.withdraw(in_flight[:1])
        for url in urls:
            assert answer(url, in_flight[0].token)[0] == 404
            assert answer(url, in_flight[1].token) == (200, in_flight[1].validation)


def test_an_answer_past_its_expiry_is_not_served_and_the_next_publish_sweeps_it(
    tmp_path: Path, fleet_dsn: str, board: StoreTokenBoard
) -> None:
    stale = challenge("S" * 43, "S" * 43 + ".thumb")
    StoreTokenBoard(board.store, ttl=0).publish((stale,))  # as left by a holder that died
    with challenge_servers(each_on_its_address(three_hosts(tmp_path, fleet_dsn)[:1]), services.free_port()) as [url]:
        assert answer(url, stale.token)[0] == 404
    board.publish((challenge("F" * 43, "F" * 43 + ".thumb"),))
    with board.store.transaction("test") as cursor:
        cursor.execute("SELECT token FROM challenges")
        assert [row[0] for row in cursor.fetchall()] == ["F" * 43]


def test_a_host_that_did_not_order_answers_the_ca_from_the_store(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble
) -> None:
    hosts = three_hosts(tmp_path, fleet_dsn)
    for h in hosts:
        with h.config.open("a") as config:
            config.write(f'http_address = "127.0.0.1"\nhttp_port = {pebble.http_port}\nagree_tos = true\n')
    assert hosts[0].run("store", "init", "--new-key", str(tmp_path / "fleet.key")).returncode == 0
    issue(hosts[0], pebble, NAME)  # before the fleet: host-a's own server on 127.0.0.1
    assert hosts[0].run("store", "import").returncode == 0
    first = FileKeystore(hosts[0].keystore).read_index()[NAME].serial

    # Only host-b's address is the name's: the CA cannot reach host-a, which orders.
    pebble.challtestsrv("add-a", {"host": f"{NAME}.", "addresses": [ADDRESSES[1]]})
    try:
        with challenge_servers(each_on_its_address(hosts), pebble.http_port):
            renewed = hosts[0].run("renew", "--force", NAME)
    finally:
        pebble.challtestsrv("clear-a", {"host": f"{NAME}."})
    assert renewed.returncode == 0, renewed.stderr
    assert FileKeystore(hosts[0].keystore).read_index()[NAME].serial != first
    # The answers were taken down once the order was validated.
    with psycopg.connect(hosts[0].store) as connection:
        assert connection.execute("SELECT count(*) FROM challenges").fetchone() == (0,)


def test_store_init_adds_the_challenges_step_to_a_store_made_before_it(fleet_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(fleet_dsn, autocommit=True) as connection:
        connection.execute("CREATE TABLE certman_schema (version integer PRIMARY KEY)")
        connection.execute(schema.MIGRATIONS[0])
        connection.execute("INSERT INTO certman_schema VALUES (1)")
    initialise(fleet_dsn, FleetKey.create(tmp_path / "fleet.key"))
    with psycopg.connect(fleet_dsn) as connection:
        assert connection.execute("SELECT max(version) FROM certman_schema").fetchone() == (schema.LATEST,)
        columns = connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'challenges' ORDER BY 1"
        ).fetchall()
    assert [c[0] for c in columns] == ["expires_at", "holder", "identifier", "key_authorization", "token"]


def test_the_challenge_server_with_the_store_down_exits_8_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(f'store = "host=127.0.0.1 port={services.free_port()} dbname=certman user=certman"\n')
    done = subprocess.run(
        [CERTMAN, "--config", str(config), "challenge-server", "--listen", f"127.0.0.1:{services.free_port()}"],
        cwd="/",
        env=TIMER_ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 8, done.stderr
    assert "fleet store" in done.stderr and "unavailable" in done.stderr


@pytest.mark.parametrize("listen", ["8402", "127.0.0.1:99999", "[::1:80", "example.com"])
def test_a_listen_that_is_not_addr_port_is_a_usage_error(tmp_path: Path, listen: str) -> None:
    config = tmp_path / "certman.toml"
    config.write_text('store = "host=127.0.0.1 dbname=certman user=certman"\n')
    done = subprocess.run(
        [CERTMAN, "--config", str(config), "challenge-server", "--listen", listen],
        cwd="/",
        env=TIMER_ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "is not ADDR:PORT" in done.stderr
