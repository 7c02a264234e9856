"""Instructions, not seconds: callgrind counts of whole processes, repeatable on a busy machine.

Run: .venv/bin/python bench/bench_instructions.py [--base TREE]

Wall-clock tables drift by tens of percent when other work shares the two cores;
valgrind's instruction count of the same process does not. Prints, per case, the
instructions of the whole process (interpreter start and imports included):

    certman issue, 1 name      against a local Pebble, account registered beforehand
    acme-library floor         bench/floor_client.py, the same issuance with no keystore
    no-op renew, N=2,000       `certman renew` over a keystore of N certificates not yet due

``--base TREE`` adds a column for another checkout (e.g. a worktree of the previous
release), run with this venv's interpreter through PYTHONPATH, so that only the code
differs. Needs Debian's valgrind.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import services  # noqa: E402
from bench_renew import fake_keystore  # noqa: E402

PYTHON = sys.executable
NOOP_CERTIFICATES = 2000


def instructions(argv: list[str], env: dict[str, str]) -> int:
    """The instructions one process executed (callgrind's total); it must exit 0."""
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        env=env,
        capture_output=True,
        text=True,
        # Not from a checkout: `python -m` puts the working directory first on sys.path.
        cwd="/",
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(argv)} failed:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=Path, help="another checkout to count beside this one")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("bench_instructions needs valgrind: apt-get install valgrind")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    trees = {"this tree": HERE.parent, **({"base": args.base.resolve()} if args.base else {})}
    for tree in trees.values():
        subprocess.run([PYTHON, "-m", "compileall", "-q", str(tree / "certman")], check=True)
    rows: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with services.start_pebble(work / "pebble", env={"PEBBLE_WFE_NONCEREJECT": "0"}) as pebble:
            flags = ["--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle), "--agree-tos"]
            flags += ["--timeout", "600", "--http-address", "127.0.0.1", "--http-port", str(pebble.http_port)]
            for label, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree), "CERTMAN_KEYSTORE": str(work / label)}
                certman = [PYTHON, "-m", "certman", "issue", *flags]
                subprocess.run(
                    [*certman, f"warm.{len(rows)}.example"], env=env, check=True, capture_output=True, cwd="/"
                )
                rows.setdefault("certman issue, 1 name", {})[label] = instructions([*certman, "one.example"], env)
                if label == "this tree":
                    account = next((work / label / "accounts").iterdir())
                    uri = json.loads((account / "account.json").read_text())["uri"]
                    floor = [PYTHON, str(HERE / "floor_client.py"), pebble.directory_url, str(pebble.ca_bundle)]
                    floor += [str(account / "key.pem"), uri, str(pebble.http_port), "floor.example"]
                    rows["acme-library floor, 1 name"] = {label: instructions(floor, env)}
        (work / "empty.toml").write_text("")
        for label, tree in trees.items():
            keystore = work / f"noop-{label.replace(' ', '-')}"
            fake_keystore(keystore, NOOP_CERTIFICATES)
            env = {**os.environ, "PYTHONPATH": str(tree), "CERTMAN_KEYSTORE": str(keystore)}
            env["CERTMAN_CONFIG"] = str(work / "empty.toml")
            rows.setdefault(f"no-op renew, N={NOOP_CERTIFICATES:,}", {})[label] = instructions(
                [PYTHON, "-m", "certman", "renew"], env
            )
    headers = ["case", *trees, *(["this / base"] if args.base else [])]
    table = []
    for case, counts in rows.items():
        cells = [f"{counts[t] / 1e6:,.0f}M" if t in counts else "-" for t in trees]
        ratio = f"{counts['this tree'] / counts['base']:.3f}" if args.base and "base" in counts else "-"
        table.append([case, *cells, *([ratio] if args.base else [])])
    floor = rows["acme-library floor, 1 name"]["this tree"]
    table.append(["issue / floor (this tree)", f"{rows['certman issue, 1 name']['this tree'] / floor:.2f}x"])
    widths = [max(len(str(r[i])) for r in [headers, *table] if i < len(r)) for i in range(len(headers))]
    for row in [headers, *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)))


if __name__ == "__main__":
    main()
