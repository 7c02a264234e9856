"""Fleet benchmark: 3 hosts x N certificates (default 100) against Pebble, counted; prints a table.

Run: .venv/bin/python bench/bench_fleet.py [--certs N]

One PostgreSQL (Debian's 15, with pg_stat_statements loaded) and one Pebble (no
rejected nonces, for both sides), both on loopback, started here. Each host is a
keystore, a certman.toml declaring the same N certificates (HTTP-01, standalone solver,
which in a fleet publishes through the store) and real `certman` processes; one
`certman challenge-server` answers for the fleet.
The three hosts run `certman renew --jobs 8` at the same moment, round after round,
until every host serves every certificate at the store's version.

Counted, not estimated:
  - wall time from the first round's start until every host serves every version;
  - orders placed (Pebble's log: issued certificates), which must equal N;
  - store round trips per certificate: statements PostgreSQL executed for the fleet's
    database (pg_stat_statements calls, BEGIN/COMMIT included, the challenge server's
    lookups too), divided by N.
Next to it, in the same run: bench/floor_client.py (the bare `acme`-library issuance,
pre-registered account, no sleeps) run N times in a row, one process per certificate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import postgres_service  # noqa: E402  (the tests' PostgreSQL launcher)
import services  # noqa: E402  (the tests' Pebble launcher)
from fixtures.fleet import CERTMAN, TIMER_ENV, Host, challenge_servers  # noqa: E402

HOSTS = ("host-a", "host-b", "host-c")
MAX_ROUNDS = 5


def issued(pebble: services.Pebble) -> int:
    return sum("Issued certificate serial" in line for line in pebble.log_text().splitlines())


def floor(pebble: services.Pebble, work: Path, count: int) -> float:
    """Seconds for ``count`` floor-client issuances in a row (after one certman issue registers the account)."""
    keystore = work / "floor-ks"
    env = {**os.environ, "HOME": str(work)}
    subprocess.run(
        [CERTMAN, "--keystore", str(keystore), "issue", "floor-warmup.example", "--server", pebble.directory_url]
        + ["--ca-bundle", str(pebble.ca_bundle), "--agree-tos", "--email", "ops@example.com"]
        + ["--http-address", "127.0.0.1", "--http-port", str(pebble.http_port)],
        env=env,
        check=True,
        capture_output=True,
    )
    account_dir = next((keystore / "accounts").iterdir())
    uri = json.loads((account_dir / "account.json").read_text())["uri"]
    argv = [sys.executable, str(HERE / "floor_client.py"), pebble.directory_url, str(pebble.ca_bundle)]
    argv += [str(account_dir / "key.pem"), uri, str(pebble.http_port)]
    start = time.perf_counter()
    for i in range(count):
        subprocess.run([*argv, f"floor{i}.example"], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def declare(host: Host, pebble: services.Pebble, names: list[str]) -> None:
    lines = [
        f'server = "{pebble.directory_url}"',
        f'ca_bundle = "{pebble.ca_bundle}"',
        "agree_tos = true",
        'email = "ops@example.com"',
    ]
    for name in names:
        lines += [
            "[[certificate]]",
            f'names = ["{name}"]',
            "[[certificate.solver]]",
            'name = "standalone"',
            'address = "127.0.0.1"',
            f"port = {pebble.http_port}",
        ]
    with host.config.open("a") as config:
        config.write("\n".join(lines) + "\n")


def serving(hosts: list[Host], names: list[str]) -> bool:
    """Every host's keystore has every certificate live, each on the same serial on every host
    (read from the hosts' files, so that checking costs the store nothing)."""
    from certman.keystore import FileKeystore

    indexes = [FileKeystore(h.keystore).read_index() for h in hosts]
    return all(name in index and index[name].serial == indexes[0][name].serial for index in indexes for name in names)


def recorded(host: Host, count: int) -> bool:
    """The store agrees: every certificate at one version, which every host recorded installing."""
    done = host.run("store", "status", "--json")
    rows = json.loads(done.stdout) if done.returncode == 0 else []
    return len(rows) == count and all(
        set(row["installs"]) == set(HOSTS) and set(row["installs"].values()) == {row["version"]} for row in rows
    )


def round_at_once(hosts: list[Host]) -> None:
    runs = [
        subprocess.Popen(
            [CERTMAN, "--config", str(h.config), "renew", "--jobs", "8"],
            cwd="/",
            env=TIMER_ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for h in hosts
    ]
    for run in runs:
        _, err = run.communicate(timeout=1800)
        if run.returncode not in (0, 7):
            raise SystemExit(f"certman renew failed ({run.returncode}): {err[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--certs", type=int, default=100)
    count = parser.parse_args().certs
    names = [f"c{i:03d}.fleet.bench" for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        work = Path(tmp)
        # No rejected nonces: the floor client has no badNonce retry, and 100 issuances in a
        # row would meet Pebble's default 5% several times; both sides run without them.
        quiet = {"PEBBLE_WFE_NONCEREJECT": "0"}
        with (
            services.start_pebble(work / "pebble", env=quiet) as pebble,
            postgres_service.start_postgres() as postgres,
        ):
            postgres.admin("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            postgres.stop()
            postgres.start()
            database = postgres.new_database()
            postgres.admin("CREATE EXTENSION pg_stat_statements", database)
            floor_seconds = floor(pebble, work, count)

            key_file = work / "fleet.key"
            hosts = [Host(work / h, postgres.dsn(database), key_file, h) for h in HOSTS]
            for h in hosts:
                declare(h, pebble, names)
            init = hosts[0].run("store", "init", "--new-key", str(key_file))
            if init.returncode != 0:
                raise SystemExit(init.stderr)
            before = issued(pebble)
            postgres.admin("SELECT pg_stat_statements_reset()", database)
            with challenge_servers([(hosts[0], "127.0.0.1")], pebble.http_port):
                start = time.perf_counter()
                rounds = 0
                while rounds < MAX_ROUNDS:
                    round_at_once(hosts)
                    rounds += 1
                    if serving(hosts, names):
                        break
                elapsed = time.perf_counter() - start
            statements = int(
                postgres.admin(
                    "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                    f"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{database}')",
                    database,
                ).strip()
            )
            orders = issued(pebble) - before
            ok = serving(hosts, names) and recorded(hosts[0], count)

    rows = [
        (f"3 hosts x {count} certificates, until all serve all", f"{elapsed:.1f} s", f"{rounds} rounds of renew"),
        ("every host serves every version", "yes" if ok else "NO", "same serials; store status agrees"),
        ("orders placed", str(orders), f"must equal {count}: {'ok' if orders == count else 'WRONG'}"),
        ("store round trips per certificate", f"{statements / count:.1f}", f"{statements} statements in all"),
        (f"floor_client.py x {count} (one host)", f"{floor_seconds:.1f} s", "bare acme library, no store"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'fleet benchmark'.ljust(width)}  {'value':>9}  note")
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>9}  {note}")
    if not ok or orders != count:
        raise SystemExit("the fleet did not converge on exactly one order per certificate")


if __name__ == "__main__":
    main()
