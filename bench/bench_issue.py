"""Benchmark of `certman issue` against a local Pebble, next to the protocol floor.

Prints a table of whole-process medians measured in this one run:
  - `certman issue` for one name;
  - 10 names as 10 certificates by 10 invocations;
  - the floor: a minimal `acme`-library script, pre-registered account, no sleeps;
  - `certman --help` against `python -c pass`.
Target: one issuance within 1.3x the floor.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import services  # noqa: E402  (the tests' Pebble launcher)

RUNS = 7


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def main() -> None:
    python = sys.executable
    # Measure certman as pip installs it, with bytecode compiled: a session that sets
    # PYTHONDONTWRITEBYTECODE would otherwise recompile certman (not the libraries,
    # whose bytecode pip wrote) in every timed process.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([python, "-m", "compileall", "-q", str(HERE.parent / "certman")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # No injected nonce rejects here: we measure speed, not resilience.
        with services.start_pebble(work / "pebble", env={"PEBBLE_WFE_NONCEREJECT": "0"}) as pebble:
            env = {**os.environ, "CERTMAN_KEYSTORE": str(work / "ks")}
            flags = [
                "--server",
                pebble.directory_url,
                "--ca-bundle",
                str(pebble.ca_bundle),
                "--agree-tos",
                "--http-address",
                "127.0.0.1",
                "--http-port",
                str(pebble.http_port),
            ]
            certman = [python, "-m", "certman", "issue", *flags]
            timed([*certman, "warmup.example"], env)  # registers the account
            account_dir = next((work / "ks" / "accounts").iterdir())
            account_uri = json.loads((account_dir / "account.json").read_text())["uri"]
            floor = [
                python,
                str(HERE / "floor_client.py"),
                pebble.directory_url,
                str(pebble.ca_bundle),
                str(account_dir / "key.pem"),
                account_uri,
                str(pebble.http_port),
            ]
            one, base = [], []
            for i in range(RUNS):
                one.append(timed([*certman, f"one{i}.example"], env))
                base.append(timed([*floor, f"floor{i}.example"], env))
            start = time.perf_counter()
            for i in range(10):
                timed([*certman, f"ten{i}.example"], env)
            ten = time.perf_counter() - start
        helps = [timed([python, "-m", "certman", "--help"], env) for _ in range(RUNS)]
        passes = [timed([python, "-c", "pass"], env) for _ in range(RUNS)]

    one_m, base_m = statistics.median(one), statistics.median(base)
    rows = [
        ("certman issue, 1 name (median)", f"{one_m:.3f} s", f"{one_m / base_m:.2f}x floor (target <= 1.30x)"),
        ("acme-library floor, 1 name (median)", f"{base_m:.3f} s", "pre-registered account, no sleeps"),
        ("certman issue x10 invocations", f"{ten:.3f} s", f"{ten / 10:.3f} s each"),
        ("certman --help (median)", f"{statistics.median(helps) * 1000:.0f} ms", "target < 150 ms"),
        ("python -c pass (median)", f"{statistics.median(passes) * 1000:.0f} ms", "interpreter start"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'benchmark'.ljust(width)}  {'time':>9}  note")
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>9}  {note}")


if __name__ == "__main__":
    main()
