"""Fleet `renew`: three hosts renew a due certificate at the same moment; the CA sees one order.

Three hosts are three keystores and three real ``certman`` processes started together
from ``/`` with ``env -i PATH=/usr/bin:/bin``, sharing one PostgreSQL store and one
Pebble. A certificate is made due on every host the way a CA does it: an ARI window
that opened an hour ago (a version pulled afterwards has another CertID, so the window
no longer applies to it). Orders are counted from Pebble's log.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import services
from fixtures.fleet import CERTMAN, TIMER_ENV, Host, challenge_servers, issue, window_opened

from certman.keystore import FileKeystore

# Several hosts against PostgreSQL and Pebble: the full suite runs these, `make test-fast` does not.
pytestmark = pytest.mark.slow

NAME = "race.fleet.example"
ROUNDS = 20


def orders(pebble: services.Pebble) -> int:
    return sum("Issued certificate serial" in line for line in pebble.log_text().splitlines())


def served(host: Host) -> bytes:
    return FileKeystore(host.keystore).live(NAME).fullchain.read_bytes()


def all_at_once(hosts: list[Host], *args: str) -> list[dict[str, object]]:
    runs = [
        subprocess.Popen(
            [CERTMAN, "--config", str(h.config), *args, "--json"],
            cwd="/",
            env=TIMER_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for h in hosts
    ]
    documents = []
    for run in runs:
        out, err = run.communicate(timeout=180)
        assert run.returncode == 0, err
        documents.append(json.loads(out))
    return documents


def actions(document: dict[str, object]) -> list[str]:
    return [c["action"] for c in document["certificates"]]  # type: ignore[attr-defined, index]


def test_three_hosts_renewing_at_once_place_one_order_twenty_rounds_over(
    tmp_path: Path, fleet_dsn: str, pebble: services.Pebble
) -> None:
    race(tmp_path, fleet_dsn, pebble, ROUNDS)


def race(tmp_path: Path, fleet_dsn: str, pebble: services.Pebble, rounds: int) -> None:
    """``renew --force``, then ``rounds`` times a due certificate, from three hosts at once:
    one order each time, every host ends on the same version, and then all is quiet."""
    key_file = tmp_path / "fleet.key"
    hosts = [Host(tmp_path / h, fleet_dsn, key_file, h) for h in ("host-a", "host-b", "host-c")]
    for h in hosts:
        # Every host answers HTTP-01 the same way; in the fleet, through host-c's challenge server.
        with h.config.open("a") as config:
            config.write(f'http_address = "127.0.0.1"\nhttp_port = {pebble.http_port}\nagree_tos = true\n')
    assert hosts[0].run("store", "init", "--new-key", str(key_file)).returncode == 0
    issue(hosts[0], pebble, NAME)
    assert hosts[0].run("store", "import").returncode == 0
    all_at_once(hosts[1:], "sync")
    assert served(hosts[1]) == served(hosts[2]) == served(hosts[0])

    with challenge_servers([(hosts[2], "127.0.0.1")], pebble.http_port):
        # --force from every host at once: force means "renew now", not "once per host".
        before = orders(pebble)
        forced = all_at_once(hosts, "renew", "--force")
        assert orders(pebble) - before == 1
        assert sorted(a for d in forced for a in actions(d)) == ["renewed", "skipped", "skipped"]

        for round_ in range(rounds):
            all_at_once(hosts, "sync")
            assert served(hosts[0]) == served(hosts[1]) == served(hosts[2])
            for h in hosts:
                window_opened(h, NAME)
            before = orders(pebble)
            documents = all_at_once(hosts, "renew")
            assert orders(pebble) - before == 1, f"round {round_}: {documents}"
            assert sorted(a for d in documents for a in actions(d)) == ["renewed", "skipped", "skipped"]

        all_at_once(hosts, "sync")
        assert served(hosts[0]) == served(hosts[1]) == served(hosts[2])
        status = json.loads(hosts[0].run("store", "status", "--json").stdout)
        (row,) = status
        version = f"{2 + rounds:06d}"
        assert row["version"] == version and set(row["installs"].values()) == {version}
        # Quiet afterwards: nothing is due anywhere, and nobody orders.
        before = orders(pebble)
        quiet = all_at_once(hosts, "renew")
        assert orders(pebble) == before and all(actions(d) == ["skipped"] for d in quiet)
