"""Benchmark of the lifecycle commands against a local Pebble.

Prints a table of medians of whole `certman` processes measured in this one run:
issue through TLS-ALPN-01 next to HTTP-01 (standalone), show, revoke, remove, account
show/rollover, doctor, and `import certbot` of a config dir with 10 lineages made by
real certbot (timed per import, first and idempotent second run).
"""

from __future__ import annotations

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

RUNS = 5
LINEAGES = 10


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.0f}"


def main() -> None:
    python = sys.executable
    certbot = str(Path(python).parent / "certbot")
    rows: list[tuple[str, str, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with services.start_pebble(work / "pebble", env={"PEBBLE_WFE_NONCEREJECT": "0"}) as pebble:
            env = {**os.environ, "CERTMAN_KEYSTORE": str(work / "ks")}
            ca = ["--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle)]
            issue = [python, "-m", "certman", "issue", *ca, "--agree-tos"]
            http = ["--http-address", "127.0.0.1", "--http-port", str(pebble.http_port)]
            timed([*issue, *http, "warmup.example"], env)
            http01 = [timed([*issue, *http, f"h{i}.example"], env) for i in range(RUNS)]
            rows.append(("issue, HTTP-01 standalone", median_ms(http01), RUNS))
            tls = ["--solver", "tls-alpn-01", "--tls-address", "127.0.0.1", "--tls-port", str(pebble.tls_port)]
            alpn = [timed([*issue, *tls, f"a{i}.example"], env) for i in range(RUNS)]
            rows.append(("issue, TLS-ALPN-01", median_ms(alpn), RUNS))
            certman = [python, "-m", "certman"]
            rows.append(
                ("show NAME", median_ms([timed([*certman, "show", "h0.example"], env) for _ in range(RUNS)]), RUNS)
            )
            rows.append(
                (
                    "revoke NAME",
                    median_ms([timed([*certman, "revoke", f"h{i}.example"], env) for i in range(RUNS)]),
                    RUNS,
                )
            )
            rows.append(
                (
                    "remove NAME",
                    median_ms([timed([*certman, "remove", f"h{i}.example"], env) for i in range(RUNS)]),
                    RUNS,
                )
            )
            rows.append(
                ("account show", median_ms([timed([*certman, "account", "show", *ca], env) for _ in range(RUNS)]), RUNS)
            )
            rows.append(
                (
                    "account rollover",
                    median_ms([timed([*certman, "account", "rollover", *ca], env) for _ in range(RUNS)]),
                    RUNS,
                )
            )
            rows.append(
                (
                    "doctor",
                    median_ms(
                        [
                            timed(
                                [
                                    *certman,
                                    "doctor",
                                    *ca,
                                    "--http-address",
                                    "127.0.0.1",
                                    "--http-port",
                                    str(services.free_port()),
                                ],
                                env,
                            )
                            for _ in range(RUNS)
                        ]
                    ),
                    RUNS,
                )
            )
            conf = _certbot_dir(certbot, pebble, work / "certbot")
            firsts, agains = [], []
            for i in range(3):
                import_env = {**env, "CERTMAN_KEYSTORE": str(work / f"imported{i}")}
                argv = [*certman, "import", "certbot", "--config-dir", str(conf)]
                firsts.append(timed(argv, import_env))
                agains.append(timed(argv, import_env))
            rows.append((f"import certbot, {LINEAGES} lineages", median_ms(firsts), 3))
            rows.append((f"import certbot again (no-op), {LINEAGES} lineages", median_ms(agains), 3))
    width = max(len(r[0]) for r in rows)
    print(f"{'operation'.ljust(width)}  median ms  runs")
    for name, value, runs in rows:
        print(f"{name.ljust(width)}  {value.rjust(9)}  {runs:4d}")


def _certbot_dir(certbot: str, pebble: services.Pebble, base: Path) -> Path:
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(pebble.ca_bundle)}
    for i in range(LINEAGES):
        subprocess.run(
            [
                certbot,
                "certonly",
                "--standalone",
                "--non-interactive",
                "--agree-tos",
                "--register-unsafely-without-email",
                "--server",
                pebble.directory_url,
                "--http-01-address",
                "127.0.0.1",
                "--http-01-port",
                str(pebble.http_port),
                "--config-dir",
                str(base / "conf"),
                "--work-dir",
                str(base / "work"),
                "--logs-dir",
                str(base / "logs"),
                "-d",
                f"cb{i}.example",
            ],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    return base / "conf"


if __name__ == "__main__":
    main()
