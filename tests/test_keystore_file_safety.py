"""Keystore file safety: modes from the first byte whatever the umask; refusing unsafe keystores and symlinks."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import services
from fixtures.snapshot import snapshot

from certman.errors import KeystoreError
from certman.keystore import FileKeystore

DRIVER = Path(__file__).parent / "drivers" / "store_version.py"
SECRET_FILES = {"privkey.pem", "combined.pem", "spec.toml", "index.json"}


def _store(root: Path, *, umask: int = 0o022, strace_to: Path | None = None) -> None:
    argv = [sys.executable, str(DRIVER), str(root)]
    if strace_to is not None:
        argv = [
            services.require_binary("strace", "strace"),
            "-f",
            "-o",
            str(strace_to),
            "-e",
            "trace=openat,fchmod,write,chmod",
            *argv,
        ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, preexec_fn=lambda: os.umask(umask))
    assert done.returncode == 0, done.stderr


def _modes(root: Path) -> dict[str, int]:
    return {path: stat.S_IMODE(e.mode) for path, e in snapshot(root).items() if not stat.S_ISLNK(e.mode)}


def test_under_umask_000_directories_are_0700_and_key_material_0600(tmp_path: Path) -> None:
    root = tmp_path / "keystore"
    _store(root, umask=0o000)

    modes = _modes(root)

    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    for path, mode in modes.items():
        name = Path(path).name
        if (root / path).is_dir():
            assert mode == 0o700, path
        elif name in SECRET_FILES:
            assert mode == 0o600, path
        else:
            assert mode & 0o022 == 0, path


def test_the_private_key_is_created_0600_before_its_first_byte_is_written(tmp_path: Path) -> None:
    trace = tmp_path / "strace.txt"
    _store(tmp_path / "keystore", strace_to=trace)

    calls = trace.read_text().splitlines()
    opened = [i for i, line in enumerate(calls) if '"privkey.pem"' in line and "O_CREAT" in line]
    assert len(opened) == 1
    line = calls[opened[0]]
    assert "O_EXCL" in line and "O_NOFOLLOW" in line and re.search(r", 0600\) = \d+$", line), line
    fd = re.search(r"= (\d+)$", line).group(1)  # type: ignore[union-attr]
    first_write = next(c for c in calls[opened[0] :] if re.search(rf"\bwrite\({fd},", c))
    assert "BEGIN PRIVATE KEY" in first_write
    between = calls[opened[0] + 1 : calls.index(first_write)]
    assert all("chmod" not in c or "0600" in c for c in between)


def test_a_group_writable_keystore_is_refused_naming_the_path(tmp_path: Path) -> None:
    root = tmp_path / "keystore"
    root.mkdir()
    root.chmod(0o770)

    with pytest.raises(KeystoreError, match=rf"refusing to use {re.escape(str(root))}: it is writable by group"):
        FileKeystore(root)


def test_a_keystore_owned_by_another_user_is_refused_naming_the_path(tmp_path: Path) -> None:
    root = tmp_path / "keystore"
    root.mkdir(mode=0o700)
    os.chown(root, 4242, -1)

    with pytest.raises(KeystoreError, match=rf"refusing to use {re.escape(str(root))}: owned by uid 4242"):
        FileKeystore(root)


def test_the_cli_renders_an_unsafe_keystore_as_one_line_and_exit_3(tmp_path: Path) -> None:
    root = tmp_path / "keystore"
    root.mkdir()
    root.chmod(0o777)

    done = subprocess.run(
        [sys.executable, "-m", "certman", "--keystore", str(root), "list"], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 3
    assert done.stderr == (
        f"certman: refusing to use {root}: it is writable by group or others (mode 0777)\nhint: chmod 700 {root}\n"
    )


@pytest.mark.parametrize("planted", ["certs/a.example", "certs/a.example/versions", "live"])
def test_a_symlink_planted_where_the_keystore_writes_is_refused_and_not_followed(tmp_path: Path, planted: str) -> None:
    root = tmp_path / "keystore"
    _store(root)
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    moved = root / planted
    moved.rename(tmp_path / "original")
    moved.symlink_to(target)
    before = snapshot(root)

    done = subprocess.run([sys.executable, str(DRIVER), str(root)], capture_output=True, text=True, timeout=60)

    assert done.returncode == 3
    assert f"refusing to use {moved}: it is a symlink" in done.stderr
    assert list(target.iterdir()) == []
    assert snapshot(root) == before


def test_a_symlink_planted_as_a_lock_file_is_refused(tmp_path: Path) -> None:
    keystore = FileKeystore(tmp_path / "keystore")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (keystore.root / "locks").mkdir(mode=0o700)
    lock = keystore.root / "locks" / "a.example.lock"
    lock.symlink_to(victim)

    with pytest.raises(KeystoreError, match=f"refusing to follow a symlink at {re.escape(str(lock))}"):
        with keystore.lock_cert("a.example"):
            pass

    assert victim.read_text() == "precious"
