"""Make targets that explain themselves, and never upgrade the host's packages."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=120)


def test_the_venv_step_says_what_it_does_before_the_silent_install(tmp_path: Path) -> None:
    # -n prints the recipe without running it: the message comes before pip.
    for target in ("demo", "test"):
        done = make("-n", target, f"VENV={tmp_path / 'venv'}")
        assert done.returncode == 0, done.stderr
        recipe = done.stdout
        said = recipe.index("creating")
        assert said < recipe.index("pip install")
        assert "about 30 s" in recipe[said : recipe.index("\n", said)]
        assert f"make {target}:" in recipe


def test_make_deps_reports_and_changes_nothing_when_everything_is_installed() -> None:
    done = make("-s", "deps")
    assert done.returncode == 0, done.stderr
    assert "every Debian package the tests use is installed" in done.stdout


def test_every_apt_install_is_no_upgrade() -> None:
    sources = [ROOT / "Makefile", *ROOT.glob("scripts/*"), *ROOT.glob(".ci/*")]
    installs = [
        line
        for path in sources
        if path.is_file()
        for line in path.read_text().splitlines()
        if re.search(r"\bapt(-get)? install\b", line)
    ]
    assert installs
    assert all("--no-upgrade" in line for line in installs), installs
