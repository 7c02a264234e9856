"""Run every bench/bench_*.py in turn; each prints its own table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Time certman as pip installs it, bytecode compiled, even from a shell that sets
# PYTHONDONTWRITEBYTECODE (pip compiled the libraries' bytecode at install time).
env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
subprocess.run([sys.executable, "-m", "compileall", "-q", str(HERE.parent / "certman")], check=True)

failed = []
for script in sorted(HERE.glob("bench_*.py")):
    print(f"\n== {script.stem} ==", flush=True)
    if subprocess.run([sys.executable, str(script)], env=env).returncode != 0:
        failed.append(script.stem)
if failed:
    sys.exit(f"benchmarks failed: {', '.join(failed)}")
