"""Issue 15's table: certman at hosting scale, side by side with the protocol floor.

Run: .venv/bin/python bench/bench_scale.py [--quick]

One Pebble (no injected nonce rejects), one run. Each case times whole processes,
certman and bench/floor_client.py (a minimal `acme`-library client with the same
pre-registered account, on as many threads as certman has jobs) interleaved, run after
run; the table prints medians, both CPU times (user + system of the process) and
Pebble's CPU time during each, so that the ratio is honest on a shared 2-core machine:
  - issue one certificate: `certman issue NAME` against the floor with one name;
  - 10 declared certificates, all missing, issued by one `certman renew --jobs 10`;
  - 100 due certificates: `certman renew --force --jobs 8` over 100 stored ones; the
    floor issues 100 new ones on 8 threads;
  - 1,000 due certificates with `--jobs 16` (floor: 16 threads): certificates per second
    and peak RSS, against the 100 run's;
  - a no-op `certman renew` over 100,000 stored certificates (bench_renew's rows).
Medians of 7 runs (3 with --quick; the 1,000 case 3, 1 with --quick). Both sides use
HTTP-01 served by the client itself (certman's standalone solver, the floor's own server).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import bench_renew  # noqa: E402
import services  # noqa: E402
import tomli_w  # noqa: E402
from bench_renew import LAST_CPU, print_table, proc_cpu, run_cli  # noqa: E402

FLOOR = str(HERE / "floor_client.py")
# "due" is the 100 and the 1,000 case: the second compares its memory with the first's.
CASES = ("issue", "declared", "due", "noop")


class Measured:
    """One side's runs of a case: wall seconds, own CPU seconds, Pebble CPU seconds, peak RSS MiB."""

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.pebble: list[float] = []
        self.rss: list[int] = []

    def wall(self) -> float:
        return statistics.median(self.walls)

    def cpu_note(self) -> str:
        return f"CPU {statistics.median(self.cpus):.2f} s + pebble {statistics.median(self.pebble):.2f} s"


class Bench:
    def __init__(self, pebble: Any, work: Path) -> None:
        self.pebble = pebble
        self.work = work
        self.pebble_pid = next(s.process.pid for s in pebble.services if s.name == "pebble" and s.process)
        self.keystore = work / "ks"
        self.env = {
            **os.environ,
            "CERTMAN_KEYSTORE": str(self.keystore),
            "CERTMAN_SERVER": pebble.directory_url,
            "CERTMAN_CA_BUNDLE": str(pebble.ca_bundle),
            "CERTMAN_AGREE_TOS": "true",
            "CERTMAN_SOLVER": "standalone",
            "CERTMAN_HTTP_ADDRESS": "127.0.0.1",
            "CERTMAN_HTTP_PORT": str(pebble.http_port),
            "CERTMAN_TIMEOUT": "300",
        }
        self.floor_args: list[str] = []
        self.configs = 0

    def register(self) -> None:
        """Register certman's account (and warm Pebble) outside the measurements; the floor signs with it."""
        self.certman(["issue", "warm.bench.example"])
        account_dir = next((self.keystore / "accounts").iterdir())
        uri = json.loads((account_dir / "account.json").read_text())["uri"]
        self.floor_args = [FLOOR, self.pebble.directory_url, str(self.pebble.ca_bundle)]
        self.floor_args += [str(account_dir / "key.pem"), uri, str(self.pebble.http_port)]

    def declare(self, names: list[str]) -> dict[str, str]:
        """The environment of a run whose certman.toml declares ``names``."""
        self.configs += 1
        config = self.work / f"declared-{self.configs}.toml"
        config.write_text(tomli_w.dumps({"certificate": [{"names": [n]} for n in names]}))
        return {**self.env, "CERTMAN_CONFIG": str(config)}

    def certman(self, args: list[str], env: dict[str, str] | None = None, into: Measured | None = None) -> None:
        self._run(run_cli, args, env or self.env, into)

    def floor(self, names: list[str], threads: int, into: Measured) -> None:
        def floor_cli(args: list[str], env: dict[str, str]) -> tuple[float, int, int]:
            return run_cli([*self.floor_args, *args], env, binary=sys.executable)

        self._run(floor_cli, [*names, f"--threads={threads}"], self.env, into)

    def _run(self, runner: Any, args: list[str], env: dict[str, str], into: Measured | None) -> None:
        before = proc_cpu(self.pebble_pid)
        wall, code, rss = runner(args, env)
        if code != 0:
            raise SystemExit(f"{args[:3]}... exited {code}")
        if into is not None:
            into.walls.append(wall)
            into.cpus.append(LAST_CPU[0])
            into.pebble.append(proc_cpu(self.pebble_pid) - before)
            into.rss.append(rss)


def row(case: str, ours: Measured, floor: Measured, target: str, note: str = "") -> list[str]:
    ratio = ours.wall() / floor.wall()
    return [
        case,
        f"{ours.wall():.3f}",
        f"{floor.wall():.3f}",
        f"{ratio:.2f}x (target {target})",
        f"certman {ours.cpu_note()}; floor {floor.cpu_note()}" + (f"; {note}" if note else ""),
        f"{max(ours.rss)} / {max(floor.rss)}",
    ]


def acme_rows(bench: Bench, runs: int, thousand_runs: int, rows: list[list[str]], cases: set[str]) -> None:
    """Append each case's row to ``rows`` as it is measured: a run that fails later keeps them.
    ``cases``: which of CASES to run."""
    if "issue" in cases:
        ours, floor = Measured(), Measured()
        for i in range(runs):
            bench.certman(["issue", f"one{i}.bench.example"], into=ours)
            bench.floor([f"floor-one{i}.bench.example"], 1, floor)
        rows.append(row("issue one certificate, whole process", ours, floor, "<= 1.15x"))

    if "declared" in cases:
        ours, floor = Measured(), Measured()
        for i in range(runs):
            names = [f"d{i}-{k}.bench.example" for k in range(10)]
            bench.certman(["renew", "--jobs", "10", *names], bench.declare(names), ours)
            bench.floor([f"floor-d{i}-{k}.bench.example" for k in range(10)], 10, floor)
        rows.append(row("10 declared, one renew --jobs 10 (floor 10 threads)", ours, floor, "<= 1.3x"))

    if "due" not in cases:
        return
    hundred = due_rows(bench, 100, 8, runs, "<= 1.2x")
    rows.append(hundred[0])
    thousand = due_rows(bench, 1000, 16, thousand_runs, "-")
    rows.append(thousand[0])
    rss_100, rss_1000 = max(hundred[1].rss), max(thousand[1].rss)
    rows.append(
        [
            "1,000 due --jobs 16: throughput and memory",
            f"{1000 / thousand[1].wall():.1f} certs/s",
            f"{1000 / thousand[2].wall():.1f} certs/s",
            f"RSS {rss_1000 / rss_100:.2f}x the 100 run (target <= 1.5x)",
            f"certman peak RSS {rss_1000} MiB at 1,000, {rss_100} MiB at 100",
            "-",
        ]
    )


def due_rows(bench: Bench, count: int, jobs: int, runs: int, target: str) -> tuple[list[str], Measured, Measured]:
    """``count`` stored certificates renewed with --force against the floor issuing as many on ``jobs`` threads."""
    names = [f"due{count}-{k}.bench.example" for k in range(count)]
    # Setup, not measured: issue them all once.
    bench.certman(["renew", "--jobs", str(jobs), *names], bench.declare(names))
    ours, floor = Measured(), Measured()
    for i in range(runs):
        bench.certman(["renew", "--force", "--jobs", str(jobs), *names], into=ours)
        bench.floor([f"floor-due{count}-{i}-{k}.bench.example" for k in range(count)], jobs, floor)
    case = f"{count:,} due, renew --force --jobs {jobs} (floor {jobs} threads)"
    return row(case, ours, floor, target, f"median of {runs}"), ours, floor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="medians of 3 (the 1,000 case: 1 run)")
    parser.add_argument("--noop-size", type=int, default=100_000, help="no-op keystore size (0: skip)")
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)} (default: all)"
    )
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    if not cases <= set(CASES):
        parser.error(f"--cases: choose from {', '.join(CASES)}")
    runs = 3 if args.quick else 7
    # Time certman as pip installs it, bytecode compiled (see bench/run.py).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "certman")], check=True)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        work = Path(tmp)
        # No injected nonce rejects: we measure speed, not resilience.
        rows: list[list[str]] = []
        headers = ["case", "certman s", "floor s", "ratio", "CPU", "peak RSS MiB certman / floor"]
        try:
            with services.start_pebble(work / "pebble", env={"PEBBLE_WFE_NONCEREJECT": "0"}) as pebble:
                bench = Bench(pebble, work)
                bench.register()
                acme_rows(bench, runs, 1 if args.quick else 3, rows, cases)
        except SystemExit:
            print_table(rows, headers=headers)
            raise
        table = [headers, *rows]
        if args.noop_size and "noop" in cases:
            noop = bench_renew.noop_rows([args.noop_size], work, runs, None)
            table += [[r[0], r[1], "-", "-", r[3], r[4]] for r in noop]
        print_table(table[1:], headers=table[0])


if __name__ == "__main__":
    main()
