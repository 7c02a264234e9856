"""Run every bench/bench_*.py in turn; each prints its own table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

failed = []
for script in sorted(Path(__file__).resolve().parent.glob("bench_*.py")):
    print(f"\n== {script.stem} ==", flush=True)
    if subprocess.run([sys.executable, str(script)]).returncode != 0:
        failed.append(script.stem)
if failed:
    sys.exit(f"benchmarks failed: {', '.join(failed)}")
