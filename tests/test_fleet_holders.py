"""A lease holder that stalls (SIGSTOP) or dies (SIGKILL) mid-renewal: another host takes over.

host-a's renewal is held mid-order the way a slow network holds it: Pebble's HTTP-01
request lands on a socket that accepts and never answers, where the fleet's challenge
server (``certman challenge-server``) listens otherwise. The lease TTL is one second (``lease_ttl``), so
the server's clock expires a holder that stopped renewing it. Everything runs through
the real ``certman`` from ``/`` with ``env -i PATH=/usr/bin:/bin``.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import psycopg
import pytest
import services
from fixtures.fleet import CERTMAN, TIMER_ENV, Host, challenge_servers, issue, window_opened

from certman.keystore import FileKeystore

# Several hosts against PostgreSQL and Pebble: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

NAME = "race.fleet.example"


def lease_holder(dsn: str) -> tuple[str, int, bool] | None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute(
            "SELECT holder, token, expires_at > clock_timestamp() FROM leases WHERE name = %s", (NAME,)
        ).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def serial(host: Host) -> str | None:
    return FileKeystore(host.keystore).read_index()[NAME].serial


def renewing(host: Host) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CERTMAN, "--config", str(host.config), "renew", "--json"],
        cwd="/",
        env=TIMER_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def silent_listener(port: int) -> socket.socket:
    """Accepts connections (the kernel does) and never answers: an order stuck in validation."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(16)
    return sock


def held_mid_renewal(dsn: str, host_id: str) -> bool:
    found = lease_holder(dsn)
    return found is not None and found[0] == host_id and found[2]


def expired(dsn: str) -> bool:
    found = lease_holder(dsn)
    return found is not None and not found[2]


def test_a_stalled_holder_loses_and_a_killed_one_is_recovered(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble
) -> None:
    key_file = tmp_path / "fleet.key"
    a, b, c = (Host(tmp_path / h, fleet_dsn, key_file, h) for h in ("host-a", "host-b", "host-c"))
    a_reloaded, b_reloaded, c_reloaded = (tmp_path / f"{h}-reloaded" for h in "abc")
    elsewhere = services.free_port()
    for h, port, marker in ((a, elsewhere, a_reloaded), (b, pebble.http_port, b_reloaded), (c, elsewhere, c_reloaded)):
        with h.config.open("a") as config:
            config.write(
                f'lease_ttl = 1\nserver = "{pebble.directory_url}"\nca_bundle = "{pebble.ca_bundle}"\n'
                f'[[certificate]]\nnames = ["{NAME}"]\n'
                f'[[certificate.solver]]\nname = "standalone"\naddress = "127.0.0.1"\nport = {port}\n'
                f'[[certificate.reloader]]\nname = "command"\nargv = ["/usr/bin/touch", "{marker}"]\n'
            )
    assert a.run("store", "init", "--new-key", str(key_file)).returncode == 0
    issue(a, pebble, NAME)
    assert a.run("store", "import").returncode == 0
    assert b.run("sync").returncode == 0
    first = serial(a)

    # Stalled: host-a holds the lease mid-order and is stopped past the TTL.
    gate = silent_listener(pebble.http_port)
    window_opened(a, NAME)
    stalled = renewing(a)
    try:
        services.wait_for(lambda: held_mid_renewal(fleet_dsn, "host-a"), timeout=60, what="host-a to hold the lease")
        stalled.send_signal(signal.SIGSTOP)
        services.wait_for(lambda: expired(fleet_dsn), what="the server to expire host-a's lease")
    finally:
        gate.close()
    window_opened(b, NAME)
    with challenge_servers([(b, "127.0.0.1")], pebble.http_port):
        taken = b.run("renew", "--json")
    assert taken.returncode == 0, taken.stderr
    assert [r["action"] for r in json.loads(taken.stdout)["certificates"]] == ["renewed"]
    second = serial(b)
    assert second != first and b_reloaded.exists()
    stalled.send_signal(signal.SIGCONT)
    out, err = stalled.communicate(timeout=120)
    assert stalled.returncode == 7, err
    assert [r["action"] for r in json.loads(out)["certificates"]] == ["failed"]
    # Nothing of host-a's attempt is installed or reloaded anywhere; host-b's version stands.
    assert serial(a) == first and not a_reloaded.exists()
    (row,) = json.loads(a.run("store", "status", "--json").stdout)
    assert row["version"] == "000002" and row["installs"] == {"host-a": "000001", "host-b": "000002"}

    # Killed: host-c (its attempts have no failures to back off from) pulls host-b's version,
    # then dies holding the lease mid-order.
    assert c.run("sync").returncode == 0 and serial(c) == second and c_reloaded.exists()
    c_reloaded.unlink()
    gate = silent_listener(pebble.http_port)
    window_opened(c, NAME)
    killed = renewing(c)
    try:
        services.wait_for(lambda: held_mid_renewal(fleet_dsn, "host-c"), timeout=60, what="host-c to hold the lease")
        killed.kill()
        killed.communicate(timeout=30)
    finally:
        gate.close()
    holder = lease_holder(fleet_dsn)
    assert holder is not None and holder[0] == "host-c"
    services.wait_for(lambda: expired(fleet_dsn), what="the server to expire the dead holder's lease")
    window_opened(b, NAME)
    with challenge_servers([(c, "127.0.0.1")], pebble.http_port):
        recovered = b.run("renew", "--json")
    assert recovered.returncode == 0, recovered.stderr
    assert [r["action"] for r in json.loads(recovered.stdout)["certificates"]] == ["renewed"]
    after = lease_holder(fleet_dsn)
    assert after is not None and after[0] == "host-b" and after[1] > holder[1]
    assert serial(c) == second and not c_reloaded.exists()
    assert c.run("sync").returncode == 0 and serial(c) == serial(b) != second and c_reloaded.exists()
