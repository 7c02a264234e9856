"""`certman store init|import|status` and the fleet settings, through the real ``certman`` program.

Each host's certman.toml names the store (a libpq URL without password), the host and
the fleet key file; the password comes from a libpq passfile. Commands run as the
timer runs them: from ``/`` with ``env -i PATH=/usr/bin:/bin``, against a real
PostgreSQL 15 (tests/postgres_service.py) and, for import, certificates from Pebble.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import postgres_service
import pytest
import services
from cryptography.hazmat.primitives import serialization
from fixtures.fleet import CERTMAN, TIMER_ENV, Host, issue

from certman.fleet import schema
from certman.keystore import FileKeystore, ca_id

# PostgreSQL and whole keystores: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow


def test_init_makes_a_key_and_the_schema_and_is_idempotent(host: Host, postgres: postgres_service.Postgres) -> None:
    key_file = host.config.parent / "fleet.key"
    first = host.run("store", "init", "--new-key", str(key_file))
    assert first.returncode == 0, first.stderr
    assert f"schema 0 -> {schema.LATEST}" in first.stdout and "bound to it" in first.stdout
    assert "fleet-test-password" not in first.stdout + first.stderr
    assert len(key_file.read_bytes()) == 32 and key_file.stat().st_mode & 0o777 == 0o600
    again = host.run("store", "init")
    assert again.returncode == 0, again.stderr
    assert f"schema {schema.LATEST} (current)" in again.stdout and "matches it" in again.stdout
    refused = host.run("store", "init", "--new-key", str(key_file))
    assert refused.returncode == 2 and "exists already" in refused.stderr
    status = host.run("store", "status")
    assert status.returncode == 0, status.stderr
    assert "no certificates" in status.stdout


def test_a_wrong_fleet_key_names_the_file_and_writes_nothing(
    host: Host, tmp_path: Path, postgres: postgres_service.Postgres, pebble: services.Pebble
) -> None:
    assert host.run("store", "init", "--new-key", str(host.config.parent / "fleet.key")).returncode == 0
    intruder = Host(tmp_path / "host-b", host.store.split("?")[0], tmp_path / "host-b" / "other.key", "host-b")
    issue(intruder, pebble, "wrongkey.example")
    made = intruder.run("store", "init", "--new-key", str(tmp_path / "host-b" / "other.key"))
    assert made.returncode == 3, made.stderr
    assert "other.key" in made.stderr and "hint:" in made.stderr and "Traceback" not in made.stderr
    assert not (tmp_path / "host-b" / "other.key").exists()
    # A key file made by hand: import refuses it before writing anything.
    (tmp_path / "host-b" / "other.key").write_bytes(os.urandom(32))
    (tmp_path / "host-b" / "other.key").chmod(0o600)
    imported = intruder.run("store", "import")
    assert imported.returncode == 3 and "other.key" in imported.stderr
    database = host.store.split("?")[0].rsplit("/", 1)[1]
    tables = ("accounts", "certificates", "versions", "installs")
    counts = postgres.admin("SELECT " + " + ".join(f"(SELECT count(*) FROM {t})" for t in tables), database)
    assert counts.strip() == "0"


@pytest.mark.parametrize(
    ("store_line", "shown"),
    [
        ('store = "postgresql://certman:hunter22@db.example/certman"', "postgresql://certman@db.example/certman"),
        ("store = \"host=db.example user=certman password='hunter22'\"", "password=[redacted]"),
    ],
)
def test_a_password_in_certman_toml_is_refused(tmp_path: Path, store_line: str, shown: str) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(store_line + "\n")
    done = subprocess.run(
        [CERTMAN, "--config", str(config), "store", "status"], cwd="/", env=TIMER_ENV, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "holds a password" in done.stderr and shown in done.stderr and "PGPASSFILE" in done.stderr
    assert "hunter22" not in done.stderr


def test_local_checks_come_before_the_first_connection(host: Host, tmp_path: Path) -> None:
    # The store is a port nobody listens on: each failure below is found before connecting.
    unreachable = f"postgresql://certman@127.0.0.1:{services.free_port()}/certman"
    key_file = host.config.parent / "fleet.key"
    missing = host.run("store", "import", "--store", unreachable)
    assert missing.returncode == 2 and "fleet.key cannot be read" in missing.stderr
    key_file.write_bytes(os.urandom(32))
    key_file.chmod(0o644)
    readable = host.run("store", "import", "--store", unreachable)
    assert readable.returncode == 2 and "others can read it" in readable.stderr and "chmod 600" in readable.stderr
    key_file.chmod(0o600)
    down = host.run("store", "import", "--store", unreachable)
    assert down.returncode == 8, down.stderr
    assert "is unavailable" in down.stderr and unreachable in down.stderr and "hint:" in down.stderr
    by_env = host.run("store", "status", env={"CERTMAN_STORE": unreachable})
    assert by_env.returncode == 8 and unreachable in by_env.stderr
    # A password is allowed in the environment, and never printed, even at -vv.
    with_password = unreachable.replace("certman@", "certman:s3cret-pw-77@")
    verbose = host.run("-vv", "store", "import", env={"CERTMAN_STORE": with_password})
    assert verbose.returncode == 8 and unreachable in verbose.stderr and "s3cret-pw-77" not in verbose.stderr
    no_extra = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['psycopg'] = None; from certman.cli import main; main()"]
        + ["--config", str(host.config), "store", "status"],
        cwd="/",
        env=TIMER_ENV,
        capture_output=True,
        text=True,
    )
    assert no_extra.returncode == 2 and "certman[postgres]" in no_extra.stderr


def test_import_uploads_a_keystore_once_and_status_shows_it(
    host: Host, pebble: services.Pebble, postgres: postgres_service.Postgres
) -> None:
    assert host.run("store", "init", "--new-key", str(host.config.parent / "fleet.key")).returncode == 0
    issue(host, pebble, "a.fleet.example", "b.fleet.example")
    done = host.run("store", "import", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["accounts"] == [ca_id(pebble.directory_url)]
    assert result["certificates"] == [
        {"name": "a.fleet.example", "version": "000001"},
        {"name": "b.fleet.example", "version": "000001"},
    ]
    again = json.loads(host.run("store", "import", "--json").stdout)
    assert again["certificates"] == [] and again["certificates_kept"] == ["a.fleet.example", "b.fleet.example"]
    assert again["accounts_kept"] == [ca_id(pebble.directory_url)]
    status = json.loads(host.run("store", "status", "--json").stdout)
    assert [(s["name"], s["version"], s["installs"]) for s in status] == [
        ("a.fleet.example", "000001", {"host-a": "000001"}),
        ("b.fleet.example", "000001", {"host-a": "000001"}),
    ]
    text = host.run("store", "status").stdout
    assert "version: 000001 (fence 0)" in text and "hosts:   host-a=000001" in text

    # What the store holds reads back as the local keystore has it, key included.
    from certman.fleet.settings import open_store

    os.environ["PGPASSFILE"] = str(host.config.parent / "pgpass")
    try:
        from certman.config import load_settings

        store = open_store(load_settings(host.config, env={}))
        local = FileKeystore(host.keystore)
        key_pem, leaf_pem, _, meta = store.read_version("a.fleet.example", "000001") or pytest.fail("no version")
        paths = local.live("a.fleet.example")
        assert (key_pem, leaf_pem) == (paths.privkey.read_bytes(), paths.cert.read_bytes())
        assert meta.serial == local.read_index()["a.fleet.example"].serial
        assert store.read_spec("a.fleet.example") == local.read_spec("a.fleet.example")
        assert store.load_account(ca_id(pebble.directory_url)) == local.load_account(ca_id(pebble.directory_url))
        store.close()
    finally:
        del os.environ["PGPASSFILE"]

    # Keys are encrypted at rest: pg_dump of the whole database holds none in any form.
    database = host.store.split("?")[0].rsplit("/", 1)[1]
    dump = subprocess.run(
        [postgres_service._binary("pg_dump"), "-h", str(postgres.socket_dir), "-p", str(postgres.port)]
        + ["-U", "postgres", "--data-only", database],
        capture_output=True,
        check=True,
    ).stdout
    account_key = FileKeystore(host.keystore).load_account(ca_id(pebble.directory_url))
    assert account_key is not None and b"PRIVATE KEY" not in dump
    for pem in (key_pem, account_key[0]):
        key = serialization.load_pem_private_key(pem, None)
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        scalar = key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
        body = b"".join(pem.splitlines()[1:-1])
        for needle in (pem, der, base64.b64encode(der), body[:40], scalar, scalar.hex().encode(), der.hex().encode()):
            assert needle not in dump


def test_rekey_reseals_every_key_and_the_old_key_stops_opening(host: Host, pebble: services.Pebble) -> None:
    # One certificate key and one account key: both re-sealed, then opened with the new key elsewhere.
    assert host.run("store", "init", "--new-key", str(host.config.parent / "fleet.key")).returncode == 0
    issue(host, pebble, "rekey.fleet.example")
    assert host.run("store", "import").returncode == 0
    new_key = host.config.parent / "fleet-2.key"
    done = host.run("store", "rekey", "--new-key", str(new_key))
    assert done.returncode == 0, done.stderr
    assert "re-sealed 2 key(s)" in done.stdout and new_key.stat().st_mode & 0o777 == 0o600
    old = host.run("store", "import")
    assert old.returncode == 3 and "fleet.key" in old.stderr and "hint:" in old.stderr
    again = host.run("store", "rekey", "--new-key", str(host.config.parent / "fleet-3.key"))
    assert again.returncode == 3 and not (host.config.parent / "fleet-3.key").exists()
    host.config.write_text(host.config.read_text().replace('"fleet.key"', '"fleet-2.key"'))
    assert host.run("store", "import").returncode == 0
    other = Host(host.config.parent.parent / "host-b", host.store.split("?")[0], new_key, "host-b")
    pulled = other.run("sync")
    assert pulled.returncode == 0 and "rekey.fleet.example: installed" in pulled.stdout
