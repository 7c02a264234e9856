"""The fleet store fails in the middle of a CLI ``renew``: PostgreSQL restarts while the
lease holder waits for the CA to finalize its order.

The holder is held there by the fault proxy in front of Pebble, which stalls the
finalize answer; PostgreSQL is restarted (a fast shutdown, then a start on the same
port and data) meanwhile. The run fails with a clear error and installs nothing; the
local certificate stays what the proxy serves; the next run (and the challenge server,
which reconnects by itself) recovers.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import postgres_service
import psycopg
import pytest
import services
from fixtures.fault_proxy import FaultProxy
from fixtures.fleet import CERTMAN, TIMER_ENV, Host, challenge_servers, window_opened

from certman.keystore import FileKeystore

# Several hosts against PostgreSQL and Pebble: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

NAME = "restart.fleet.example"
FINALIZE = r"^/finalize-order/"


def lease_expired(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as connection:
        found = connection.execute(
            "SELECT expires_at <= clock_timestamp() FROM leases WHERE name = %s", (NAME,)
        ).fetchone()
    return found is not None and bool(found[0])


def test_a_store_restart_mid_renew_fails_the_run_clearly_leaves_the_local_certificate_and_the_next_run_recovers(
    tmp_path: Path,
    fleet_dsn: str,
    postgres: postgres_service.Postgres,
    fault_proxy: FaultProxy,
    pebble: services.Pebble,
) -> None:
    host = Host(tmp_path / "host-a", fleet_dsn, tmp_path / "fleet.key", "host-a")
    with host.config.open("a") as config:
        config.write(
            f'lease_ttl = 2\nserver = "{fault_proxy.directory_url}"\nca_bundle = "{pebble.ca_bundle}"\n'
            f'agree_tos = true\n[[certificate]]\nnames = ["{NAME}"]\n'
            f'[[certificate.solver]]\nname = "standalone"\naddress = "127.0.0.1"\nport = {pebble.http_port}\n'
        )
    assert host.run("store", "init", "--new-key", str(tmp_path / "fleet.key")).returncode == 0
    with challenge_servers([(host, "127.0.0.1")], pebble.http_port):
        assert host.run("renew").returncode == 0  # version 1, committed to the store
        live = FileKeystore(host.keystore).live(NAME)
        served = live.fullchain.read_bytes(), live.privkey.read_bytes()
        window_opened(host, NAME)

        seen = fault_proxy.count("POST", FINALIZE)
        fault_proxy.add(path=FINALIZE, method="POST", stall=10.0, times=1)
        run = subprocess.Popen(
            [CERTMAN, "--config", str(host.config), "renew", "--json"],
            cwd="/",
            env=TIMER_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            services.wait_for(lambda: fault_proxy.count("POST", FINALIZE) > seen, timeout=60, what="the finalize")
            postgres.stop()
            postgres.start()
        finally:
            out, err = run.communicate(timeout=120)
        assert run.returncode == 7, err
        (result,) = json.loads(out)["certificates"]
        assert result["action"] == "failed"
        assert "could not be kept: fleet store" in result["error"] and "unavailable" in result["error"]
        assert "the local certificate is still served" in result["hint"]
        # Nothing of the interrupted run was installed: the proxy's files are the same bytes.
        assert (live.fullchain.read_bytes(), live.privkey.read_bytes()) == served

        services.wait_for(lambda: lease_expired(fleet_dsn), what="the server to expire the lease")
        recovered = host.run("renew", "--force", "--json")
    assert recovered.returncode == 0, recovered.stderr
    assert [c["action"] for c in json.loads(recovered.stdout)["certificates"]] == ["renewed"]
    (row,) = json.loads(host.run("store", "status", "--json").stdout)
    assert row["version"] == "000002" and row["installs"] == {"host-a": "000002"}
