"""`certman revoke`, `remove` and `reconfigure` on a fleet host: under the certificate's
lease, in the store and on every host.

Two hosts are two keystores and real ``certman`` processes from ``/`` with
``env -i PATH=/usr/bin:/bin``, sharing one PostgreSQL store and the session Pebble.
host-a issued the certificate and imported it; the operator works on host-b.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import services
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from fixtures.fleet import Host, challenge_servers, issue, window_opened

from certman.fleet.operations import account_lease
from certman.keystore import FileKeystore

# Several hosts against PostgreSQL and Pebble: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

NAME = "ops.fleet.example"


def two_hosts(tmp_path: Path, dsn: str, pebble: services.Pebble) -> tuple[Host, Host]:
    key_file = tmp_path / "fleet.key"
    a, b = (Host(tmp_path / h, dsn, key_file, h) for h in ("host-a", "host-b"))
    assert a.run("store", "init", "--new-key", str(key_file)).returncode == 0
    issue(a, pebble, NAME)
    assert a.run("store", "import").returncode == 0
    assert b.run("sync").returncode == 0
    return a, b


def store_rows(host: Host) -> list[dict[str, object]]:
    done = host.run("store", "status", "--json")
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


def test_revoke_on_any_host_revokes_the_fleets_version_and_every_host_then_leaves_it_alone(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble
) -> None:
    a, b = two_hosts(tmp_path, fleet_dsn, pebble)
    serial = FileKeystore(a.keystore).read_index()[NAME].serial
    done = b.run("revoke", NAME, "--reason", "superseded", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["signed_by"] == "account"  # the fleet's account, from the store
    assert pebble.cert_status(serial)["Status"] == "Revoked"

    assert a.run("sync").returncode == 0
    assert FileKeystore(a.keystore).read_revocation(NAME).serial == serial
    window_opened(a, NAME)
    renewed = a.run("renew", "--json")
    assert renewed.returncode == 0, renewed.stderr
    (result,) = json.loads(renewed.stdout)["certificates"]
    assert result["action"] == "skipped" and "revoked" in result["reason"]


def test_remove_on_any_host_archives_it_in_the_store_and_on_every_host_that_installed_it(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble
) -> None:
    a, b = two_hosts(tmp_path, fleet_dsn, pebble)
    done = b.run("remove", NAME)
    assert done.returncode == 0, done.stderr
    assert not FileKeystore(b.keystore).has(NAME)
    assert store_rows(b) == []

    synced = a.run("sync", "--json")
    assert synced.returncode == 0, synced.stderr
    assert [c["action"] for c in json.loads(synced.stdout)["certificates"]] == ["removed"]
    assert not FileKeystore(a.keystore).has(NAME)
    assert list((a.keystore / "archive").iterdir())
    # Nothing brings it back: host-a's renew has nothing of it left to commit.
    assert a.run("renew").returncode == 0
    assert store_rows(a) == []


def stored_key_type(dsn: str) -> str:
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            "SELECT spec->>'key_type' FROM certificates WHERE name = %s AND archived IS NULL", (NAME,)
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_reconfigure_on_one_host_is_what_the_next_renewal_on_another_host_uses(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble
) -> None:
    a, b = two_hosts(tmp_path, fleet_dsn, pebble)
    done = b.run("reconfigure", NAME, "--key-type", "rsa2048")
    assert done.returncode == 0, done.stderr
    assert stored_key_type(fleet_dsn) == "rsa2048"
    with challenge_servers([(b, "127.0.0.1")], pebble.http_port):
        renewed = a.run("renew", "--force", NAME)
    assert renewed.returncode == 0, renewed.stderr
    leaf = x509.load_pem_x509_certificate(FileKeystore(a.keystore).live(NAME).cert.read_bytes())
    assert isinstance(leaf.public_key(), rsa.RSAPublicKey) and leaf.public_key().key_size == 2048


@pytest.mark.parametrize(
    "operation", [("revoke", NAME), ("remove", NAME), ("reconfigure", NAME, "--key-type", "rsa2048")]
)
def test_while_another_host_holds_the_lease_the_operation_is_refused_and_nothing_changes(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble, operation: tuple[str, ...]
) -> None:
    a, b = two_hosts(tmp_path, fleet_dsn, pebble)
    serial = FileKeystore(a.keystore).read_index()[NAME].serial
    with psycopg.connect(fleet_dsn, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO leases VALUES (%s, 'host-a', 1, clock_timestamp() + interval '10 minutes')", (NAME,)
        )
    done = b.run(*operation)
    assert done.returncode == 3
    assert f"another fleet host holds the lease on {NAME}: it is working on it now" in done.stderr
    assert pebble.cert_status(serial)["Status"] == "Valid"
    assert FileKeystore(b.keystore).has(NAME) and FileKeystore(b.keystore).read_revocation(NAME) is None
    assert [row["name"] for row in store_rows(b)] == [NAME]
    assert stored_key_type(fleet_dsn) == FileKeystore(b.keystore).read_spec(NAME).key_type == "ecdsa-p256"


def account(host: Host, pebble: services.Pebble, *args: str) -> dict[str, object]:
    done = host.run("account", *args, "--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle), "--json")
    assert done.returncode == 0, done.stderr
    info: dict[str, object] = json.loads(done.stdout)
    return info


def test_an_account_key_rolled_over_on_one_host_is_the_key_every_host_then_uses(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble
) -> None:
    a, b = two_hosts(tmp_path, fleet_dsn, pebble)
    before = account(a, pebble, "show", "--offline")
    rolled = account(b, pebble, "rollover")
    assert rolled["uri"] == before["uri"] and rolled["key_thumbprint"] != before["key_thumbprint"]
    # host-a asks the CA with the fleet's key, which the CA now knows as the account's.
    seen_from_a = account(a, pebble, "show")
    assert (seen_from_a["key_thumbprint"], seen_from_a["status"]) == (rolled["key_thumbprint"], "valid")
    with challenge_servers([(b, "127.0.0.1")], pebble.http_port):
        renewed = a.run("renew", "--force", NAME)
    assert renewed.returncode == 0, renewed.stderr


def test_an_account_registered_anew_on_one_host_replaces_the_fleets_account_on_every_host(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble
) -> None:
    a, b = two_hosts(tmp_path, fleet_dsn, pebble)
    before = account(a, pebble, "show", "--offline")
    registered = account(b, pebble, "register", "--new", "--agree-tos")
    assert registered["uri"] != before["uri"]
    assert account(a, pebble, "show", "--offline")["uri"] == registered["uri"]


def test_an_account_deactivated_on_one_host_leaves_the_store_and_the_next_renewal_registers_one(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble
) -> None:
    a, b = two_hosts(tmp_path, fleet_dsn, pebble)
    before = account(a, pebble, "show", "--offline")
    account(b, pebble, "deactivate", "--yes")
    with psycopg.connect(fleet_dsn) as connection:
        live = connection.execute("SELECT record->>'uri' FROM accounts WHERE archived IS NULL").fetchall()
    assert live == []
    with challenge_servers([(b, "127.0.0.1")], pebble.http_port):
        renewed = a.run("renew", "--force", NAME)
    assert renewed.returncode == 0, renewed.stderr
    with psycopg.connect(fleet_dsn) as connection:
        (uri,) = connection.execute("SELECT record->>'uri' FROM accounts WHERE archived IS NULL").fetchone() or ("",)
    assert uri and uri != before["uri"]


def test_while_another_host_holds_the_accounts_lease_a_rollover_is_refused(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble
) -> None:
    a, b = two_hosts(tmp_path, fleet_dsn, pebble)
    before = account(a, pebble, "show", "--offline")
    lease = account_lease(pebble.directory_url)
    with psycopg.connect(fleet_dsn, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO leases VALUES (%s, 'host-a', 1, clock_timestamp() + interval '10 minutes')", (lease,)
        )
    done = b.run("account", "rollover", "--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle))
    assert done.returncode == 3
    assert f"another fleet host holds the lease on {lease}" in done.stderr
    assert account(a, pebble, "show", "--offline")["key_thumbprint"] == before["key_thumbprint"]
