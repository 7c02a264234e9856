"""`certman sync`: a host installs what the fleet store holds, reloads, and never goes back.

host-a issues from Pebble and imports its keystore into the store; host-b, which
declares the same certificate with its own reloader, syncs. Everything runs through
the real ``certman`` from ``/`` with ``env -i PATH=/usr/bin:/bin``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import postgres_service
import pytest
import services
from fixtures.fleet import Host, issue

from certman.config import load_settings
from certman.fleet.protocol import FleetProtocol
from certman.fleet.settings import open_store
from certman.keystore import FileKeystore

# Several hosts against PostgreSQL and Pebble: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow


def served(keystore: Path, name: str) -> tuple[bytes, bytes]:
    live = FileKeystore(keystore).live(name)
    return live.privkey.read_bytes(), live.fullchain.read_bytes()


def test_sync_installs_newer_versions_reloads_and_never_goes_back(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble, postgres: postgres_service.Postgres
) -> None:
    key_file = tmp_path / "fleet.key"
    a = Host(tmp_path / "a", fleet_dsn, key_file, "host-a")
    b = Host(tmp_path / "b", fleet_dsn, key_file, "host-b")
    marker = tmp_path / "b-reloaded"
    with b.config.open("a") as config:
        config.write(
            '[[certificate]]\nnames = ["sync.fleet.example"]\n'
            f'[[certificate.reloader]]\nname = "command"\nargv = ["/usr/bin/touch", "{marker}"]\n'
        )
    assert a.run("store", "init", "--new-key", str(key_file)).returncode == 0
    issue(a, pebble, "sync.fleet.example")
    assert a.run("store", "import").returncode == 0

    first = b.run("sync", "--json")
    assert first.returncode == 0, first.stderr
    (row,) = json.loads(first.stdout)["certificates"]
    assert (row["action"], row["version"]) == ("installed", "000001")
    assert served(b.keystore, "sync.fleet.example") == served(a.keystore, "sync.fleet.example")
    assert marker.exists()
    assert (
        b.keystore.stat().st_mode & 0o777,
        FileKeystore(b.keystore).live("sync.fleet.example").privkey.stat().st_mode & 0o777,
    ) == (0o700, 0o600)

    marker.unlink()
    again = b.run("sync")
    assert again.returncode == 0 and "sync.fleet.example: current" in again.stdout
    assert not marker.exists()

    # Another host renews: its version is committed under a lease, and host-b pulls it.
    c = Host(tmp_path / "c", fleet_dsn, key_file, "host-c")
    issue(c, pebble, "sync.fleet.example")
    os.environ["PGPASSFILE"] = str(c.config.parent / "pgpass")
    try:
        store = open_store(load_settings(c.config, env={}))
        protocol = FleetProtocol(store)
        lease = protocol.try_lease("sync.fleet.example", ttl=60)
        assert lease is not None
        local = FileKeystore(c.keystore)
        live = local.live("sync.fleet.example")
        meta = local.read_meta("sync.fleet.example", local.live_version("sync.fleet.example") or "")
        assert meta is not None
        spec = local.read_spec("sync.fleet.example")
        chain = live.chain.read_bytes()
        stored = protocol.commit(lease, 1, spec, live.privkey.read_bytes(), live.cert.read_bytes(), chain, meta)
        assert stored is not None and stored.version == "000002"
        protocol.release(lease)
        store.close()
    finally:
        del os.environ["PGPASSFILE"]
    pulled = b.run("sync")
    assert pulled.returncode == 0 and "installed (store version 000002" in pulled.stdout
    assert served(b.keystore, "sync.fleet.example") == served(c.keystore, "sync.fleet.example")
    assert marker.exists()
    status = json.loads(a.run("store", "status", "--json").stdout)
    assert status[0]["installs"] == {"host-a": "000001", "host-b": "000002"}

    # A store that went back (restored from an old backup) is refused, loudly.
    before = served(b.keystore, "sync.fleet.example")
    database = fleet_dsn.rsplit("/", 1)[1]
    postgres.admin("UPDATE installs SET version = 7 WHERE host_id = 'host-b'", database)
    older = b.run("sync")
    assert older.returncode == 7
    assert "older than 000007" in older.stderr and "not installing" in older.stderr and "hint:" in older.stderr
    assert served(b.keystore, "sync.fleet.example") == before

    # An unreachable store: exit 8, the local certificate untouched.
    down = b.run("--store", f"postgresql://certman@127.0.0.1:{services.free_port()}/certman", "sync")
    assert down.returncode == 8 and "unavailable" in down.stderr and "Traceback" not in down.stderr
    assert served(b.keystore, "sync.fleet.example") == before
