"""Parallel renew through one shared standalone HTTP-01 server.

Run: .venv/bin/python bench/bench_shared_server.py [--quick]

N declared certificates, all on the standalone solver at one address and port (Pebble's
HTTP-01 port), are issued once by `certman renew --jobs 10`, then renewed with
`certman renew --force` at `--jobs 1` and at `--jobs 10`. Each figure is the median
whole-process wall time of the CLI, run as the timer runs it (`env -i PATH=/usr/bin:/bin`,
from `/`). Next to it, the protocol floor (bench/floor_client.py: one issuance with the
bare `acme` library and a pre-registered account) times N, as if issued one after another.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import services  # noqa: E402  (the tests' Pebble launcher)
import tomli_w  # noqa: E402

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = {"PATH": "/usr/bin:/bin"}


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])} exited {done.returncode}: {done.stderr[-2000:]}")
    return wall


def write_config(pebble: Any, work: Path, count: int) -> Path:
    path = work / f"certman-{count}.toml"
    solver = {"name": "standalone", "address": "127.0.0.1", "port": pebble.http_port}
    path.write_text(
        tomli_w.dumps(
            {
                "server": pebble.directory_url,
                "ca_bundle": str(pebble.ca_bundle),
                "agree_tos": True,
                # A keystore per size: `renew --force` renews every stored certificate.
                "keystore": str(work / f"ks-{count}"),
                "timeout": 120.0,
                "certificate": [{"names": [f"s{count}-{i}.bench.example"], "solver": [solver]} for i in range(count)],
            }
        )
    )
    return path


def floor_median(pebble: Any, keystore: Path, runs: int) -> float:
    account_dir = next((keystore / "accounts").iterdir())
    account_uri = json.loads((account_dir / "account.json").read_text())["uri"]
    floor = [
        sys.executable,
        str(HERE / "floor_client.py"),
        pebble.directory_url,
        str(pebble.ca_bundle),
        str(account_dir / "key.pem"),
        account_uri,
        str(pebble.http_port),
    ]
    return statistics.median(timed([*floor, f"floor{i}.bench.example"], TIMER_ENV) for i in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10 certificates, one run each (smoke test)")
    args = parser.parse_args()
    sizes, runs = ([10], 1) if args.quick else ([10, 100], 3)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-shared-") as tmp:
        work = Path(tmp)
        # No injected nonce rejects here: we measure speed, not resilience.
        with services.start_pebble(work / "pebble", env={"PEBBLE_WFE_NONCEREJECT": "0"}) as pebble:
            configs = {n: write_config(pebble, work, n) for n in sizes}
            for config in configs.values():  # issue them all once; registers the account
                timed([CERTMAN, "--config", str(config), "renew", "--jobs", "10"], TIMER_ENV)
            floor = floor_median(pebble, work / f"ks-{sizes[0]}", max(runs, 3))
            for n, config in configs.items():
                walls = {}
                for jobs in (1, 10):
                    argv = [CERTMAN, "--config", str(config), "renew", "--force", "--jobs", str(jobs)]
                    walls[jobs] = statistics.median(timed(argv, TIMER_ENV) for _ in range(runs))
                rows.append(
                    (
                        f"{n} due, one standalone port",
                        f"{walls[1]:.2f}",
                        f"{walls[10]:.2f}",
                        f"{walls[1] / walls[10]:.2f}x",
                        f"{floor * n:.2f}",
                    )
                )
    headers = (f"case (median of {runs})", "--jobs 1 s", "--jobs 10 s", "speedup", "N x floor s")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(f"floor: one issuance with the bare acme library, median {floor:.3f} s (bench/floor_client.py)")


if __name__ == "__main__":
    main()
