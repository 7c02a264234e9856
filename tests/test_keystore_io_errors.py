"""I/O errors after (and before) the point of no return (issue 12, kind 7).

strace injects EIO (and ENOSPC where a call can need space) into the keystore's own
calls of every syscall class: open, write, fsync, rename, symlink, unlink, mkdir. A
first traced run (``-y`` prints each descriptor's path) finds which calls touch the
keystore; every run must end as a keystore error naming a path (exit 3), never as an
internal error (exit 70), and once ``live/<name>`` has moved the message says the
certificate IS live. The next run always works.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import services

from certman.keys import load_key, public_keys_match, split_pem_chain
from certman.keystore.layout import TMP_PREFIX

DRIVER = Path(__file__).parent / "drivers" / "store_version.py"
CLASSES = ("openat", "write", "fsync", "renameat", "symlinkat", "unlinkat", "mkdirat")
# Calls that can run out of space; O_CREAT marks the opens that create a file.
SPACE_CLASSES = ("write", "mkdirat", "symlinkat", "openat")
# Per class, at most this many of its keystore calls, spread from the first to the last,
# so the sweep stays bounded as the store grows.
PER_CLASS = 3


def _driver(root: Path, *strace_args: str, output: str = os.devnull) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(DRIVER), str(root), "a.example", "order"]
    if strace_args:
        argv = [services.require_binary("strace", "strace"), "-f", "-o", output, *strace_args, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _keystore_calls(root: Path) -> dict[str, list[tuple[int, str]]]:
    """Per syscall class, (ordinal among that process's calls of it, the traced line) of each keystore call."""
    trace = root.parent / "trace.txt"
    done = _driver(root, "-y", "-e", f"trace={','.join(CLASSES)}", output=str(trace))
    assert done.returncode == 0, done.stderr
    seen: dict[tuple[str, str], int] = {}
    calls: dict[str, list[tuple[int, str]]] = {c: [] for c in CLASSES}
    for line in trace.read_text().splitlines():
        match = re.match(r"(\d+)\s+(\w+)\(", line)
        if not match or match.group(2) not in calls:
            continue
        key = (match.group(1), match.group(2))
        seen[key] = seen.get(key, 0) + 1
        if str(root) in line:
            calls[match.group(2)].append((seen[key], line))
    return calls


def _spread(items: list[tuple[int, str]]) -> list[tuple[int, str]]:
    if len(items) <= PER_CLASS:
        return items
    step = (len(items) - 1) / (PER_CLASS - 1)
    return [items[round(i * step)] for i in range(PER_CLASS)]


def _live_target(root: Path) -> str:
    return os.readlink(root / "live" / "a.example")


def _assert_live_is_a_complete_matching_pair(root: Path) -> None:
    live = root / "live" / "a.example"
    key_pem, fullchain = (live / "privkey.pem").read_bytes(), (live / "fullchain.pem").read_bytes()
    assert public_keys_match(load_key(key_pem), split_pem_chain(fullchain.decode())[0])


def _assert_a_keystore_error_naming_a_path(root: Path, run: subprocess.CompletedProcess[str], moved: bool) -> None:
    assert run.returncode in (0, 3), run.stderr
    if run.returncode == 3:
        assert re.fullmatch(rf"certman: .*{re.escape(str(root))}\S*.*\n", run.stderr), run.stderr
        assert ("IS live" in run.stderr) == moved, run.stderr


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    root = tmp_path / "keystore"
    first = _driver(root)
    assert first.returncode == 0, first.stderr
    return root


@pytest.mark.slow
def test_eio_and_enospc_at_every_keystore_syscall_class_is_a_keystore_error_never_70(seeded: Path) -> None:
    calls = _keystore_calls(seeded)
    assert all(calls[c] for c in CLASSES), {c: len(v) for c, v in calls.items()}
    runs = []
    for syscall in CLASSES:
        for ordinal, line in _spread(calls[syscall]):
            runs.append((syscall, ordinal, "EIO"))
            if syscall in SPACE_CLASSES and (syscall != "openat" or "O_CREAT" in line):
                runs.append((syscall, ordinal, "ENOSPC"))

    for syscall, ordinal, error in runs:
        before = _live_target(seeded)
        run = _driver(seeded, "-e", f"inject={syscall}:error={error}:when={ordinal}")
        moved = _live_target(seeded) != before
        _assert_a_keystore_error_naming_a_path(seeded, run, moved)
        _assert_live_is_a_complete_matching_pair(seeded)

    last = _driver(seeded)
    assert last.returncode == 0, last.stderr
    _assert_live_is_a_complete_matching_pair(seeded)
    assert [p for p in seeded.rglob(f"{TMP_PREFIX}*")] == []
    assert not (seeded / "certs" / "a.example" / "order.json").exists()


def test_eio_on_the_directory_fsync_that_clears_the_order_says_the_certificate_is_live(seeded: Path) -> None:
    # The issue's input: the last keystore fsync is clear_pending_order's, after live/ moved.
    ordinal, line = _keystore_calls(seeded)["fsync"][-1]
    cert_dir = seeded / "certs" / "a.example"
    assert line.endswith(f"fsync(3<{cert_dir}>) = 0") or f"<{cert_dir}>" in line, line

    run = _driver(seeded, "-e", f"inject=fsync:error=EIO:when={ordinal}")

    version = _live_target(seeded).rsplit("/", 1)[1]
    assert run.returncode == 3, run.stderr
    assert run.stderr == (
        f"certman: a.example version {version} IS live ({seeded / 'live' / 'a.example'}), "
        f"but then: cannot complete syncing {cert_dir}: Input/output error\n"
    )
    assert json.loads((seeded / "index.json").read_text())["certificates"]["a.example"]["version"] == version
    assert _driver(seeded).returncode == 0


def _certman(
    keystore: Path, *args: str, strace: tuple[str, ...] = (), output: str = os.devnull
) -> subprocess.CompletedProcess[str]:
    argv = [str(Path(sys.executable).parent / "certman"), "--keystore", str(keystore), *args]
    if strace:
        argv = [services.require_binary("strace", "strace"), "-f", "-o", output, *strace, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd="/", env={"PATH": "/usr/bin:/bin"})


def _last_keystore_calls(trace: Path, root: Path) -> dict[str, int]:
    """Per class, the last ordinal n (counted per thread, as strace injects) at which a thread
    calls into the keystore and every other thread's n-th call of it, if any, does too:
    an injection there hits the keystore only."""
    lines: dict[tuple[str, str], list[str]] = {}
    for line in trace.read_text().splitlines():
        match = re.match(r"(\d+)\s+(\w+)\(", line)
        if match and match.group(2) in CLASSES:
            lines.setdefault((match.group(1), match.group(2)), []).append(line)
    found: dict[str, int] = {}
    for syscall in CLASSES:
        threads = [calls for (_, s), calls in lines.items() if s == syscall]
        ordinals = {n for calls in threads for n, line in enumerate(calls, 1) if str(root) in line}
        safe = [n for n in ordinals if all(len(c) < n or str(root) in c[n - 1] for c in threads)]
        if safe:
            found[syscall] = max(safe)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("command", ["issue", "renew"])
def test_end_to_end_eio_at_each_syscall_class_of_issue_and_renew_is_never_70(
    pebble: services.Pebble, tmp_path: Path, command: str
) -> None:
    from fixtures.cli import issue_flags

    keystore = tmp_path / "keystore"
    issue = ("issue", *issue_flags(pebble), "a.example")
    argv: tuple[str, ...] = issue
    if command == "renew":
        # Without the run log, which every renew thread writes: the ordinals below then
        # single out keystore calls (issue keeps it, so a fault in the run log is covered).
        config = tmp_path / "certman.toml"
        config.write_text('log_file = ""\n')
        argv = ("--config", str(config), "renew", "--force", "--jobs", "2")
    assert _certman(keystore, *issue).returncode == 0
    trace = tmp_path / "trace.txt"
    counted = _certman(keystore, *argv, strace=("-y", "-e", f"trace={','.join(CLASSES)}"), output=str(trace))
    assert counted.returncode == 0, counted.stderr
    targets = _last_keystore_calls(trace, keystore)
    assert set(targets) == set(CLASSES), targets

    for syscall, n in targets.items():
        before = _live_target(keystore)
        run = _certman(keystore, *argv, strace=("-e", f"inject={syscall}:error=EIO:when={n}"))
        assert run.returncode != 70, (syscall, n, run.stderr)
        assert "internal error" not in run.stderr and "Traceback" not in run.stderr, (syscall, n, run.stderr)
        assert "Logging error" not in run.stderr, (syscall, n, run.stderr)
        assert run.returncode in ((3, 0) if command == "issue" else (7, 0)), (syscall, n, run.stderr)
        if run.returncode != 0:
            assert str(keystore) in run.stderr, run.stderr
            assert ("IS live" in run.stderr) == (_live_target(keystore) != before), run.stderr
        _assert_live_is_a_complete_matching_pair(keystore)
        if run.returncode != 0:
            # The next run works, and the following injection starts from the state counted.
            again = _certman(keystore, *argv)
            assert again.returncode == 0, (syscall, n, again.stderr)
    assert [p for p in keystore.rglob(f"{TMP_PREFIX}*")] == []
