"""Where a keystore may be created: an explicit path gets only its last directory made (as
`mkdir` would), the documented default location gets its parents too (docs/keystore.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

CERTMAN = str(Path(sys.executable).parent / "certman")
NOBODY = 65534


def certman(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "CERTMAN_CONFIG": "/dev/null", **env}
    return subprocess.run([CERTMAN, *args], capture_output=True, text=True, timeout=60, env=base, cwd="/")


def test_an_explicit_keystore_under_a_missing_parent_is_refused_and_nothing_is_made(tmp_path: Path) -> None:
    keystore = tmp_path / "typo" / "deep" / "keystore"
    done = certman("--keystore", str(keystore), "list")
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"certman: keystore {keystore} does not exist, and neither does {tmp_path / 'typo'}",
        f"hint: check the path for a typo, or create its parent first: mkdir -p {keystore.parent}",
    ]
    assert not (tmp_path / "typo").exists()


def test_the_same_from_the_environment(tmp_path: Path) -> None:
    done = certman("list", CERTMAN_KEYSTORE=str(tmp_path / "missing" / "keystore"))
    assert done.returncode == 3 and done.stderr.startswith("certman: keystore ")
    assert not (tmp_path / "missing").exists()


def test_an_explicit_keystore_whose_parent_exists_is_made_0700(tmp_path: Path) -> None:
    done = certman("--keystore", str(tmp_path / "keystore"), "list")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "keystore").stat().st_mode & 0o777 == 0o700


@pytest.fixture
def nobodys_dir() -> Iterator[Path]:
    """A directory a non-root user owns (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="certman-nobody-"))
    os.chown(path, NOBODY, NOBODY)
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_the_default_keystore_is_made_with_its_parents(nobodys_dir: Path) -> None:
    # A fresh user's ~/.local/share need not exist yet; certman makes it as XDG asks.
    data_home = nobodys_dir / "home" / ".local" / "share"
    done = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", CERTMAN, "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(nobodys_dir / "home"), "XDG_DATA_HOME": str(data_home)},
        cwd="/",
    )
    assert done.returncode == 0, done.stderr
    keystore = data_home / "certman"
    assert (keystore.stat().st_mode & 0o777, data_home.stat().st_mode & 0o777) == (0o700, 0o700)
