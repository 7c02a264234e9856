"""Crash safety of storing a version: SIGKILL or a full disk at every syscall of store_version.

strace injects the fault: ``-e inject=SYSCALL:signal=SIGKILL:when=N`` kills the
driver at the N-th call of SYSCALL, ``error=ENOSPC`` makes it fail as on a full disk.
The sweep covers every call the driver makes, counted by a first strace run, so a
new syscall in store_version is swept without editing this test.
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
from fixtures.listing import listed
from fixtures.snapshot import snapshot

from certman.keys import load_key, public_keys_match, split_pem_chain
from certman.keystore import FileKeystore
from certman.keystore.layout import TMP_PREFIX

DRIVER = Path(__file__).parent / "drivers" / "store_version.py"
# The keystore walks from its root with directory descriptors (issue 12 kind 6), so its
# renames, symlinks and mkdirs are the *at calls; mkdir is the root's own.
KILL_SYSCALLS = ("renameat", "symlinkat", "mkdir", "mkdirat", "write", "fsync")
ENOSPC_SYSCALLS = ("write", "symlinkat", "mkdir", "mkdirat")


def _run_driver(
    root: Path, *strace_args: str, strace_output: Path | None = None, name: str = "a.example"
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(DRIVER), str(root), name]
    if strace_args:
        strace = services.require_binary("strace", "strace")
        argv = [strace, "-f", "-o", str(strace_output or os.devnull), *strace_args, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def _syscall_counts(root: Path) -> dict[str, int]:
    summary = root.parent / "strace-summary.txt"
    done = _run_driver(root, "-c", "-U", "name,calls", "-e", f"trace={','.join(KILL_SYSCALLS)}", strace_output=summary)
    assert done.returncode == 0, done.stderr
    counts = {}
    for line in summary.read_text().splitlines():
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if match and match.group(1) in KILL_SYSCALLS:
            counts[match.group(1)] = int(match.group(2))
    return counts


def _assert_live_is_a_complete_matching_pair(root: Path) -> None:
    live = root / "live" / "a.example"
    key_pem = (live / "privkey.pem").read_bytes()
    cert_pem = (live / "cert.pem").read_bytes()
    fullchain_pem = (live / "fullchain.pem").read_bytes()
    assert key_pem and cert_pem
    leaf = split_pem_chain(fullchain_pem.decode())[0]
    assert public_keys_match(load_key(key_pem), leaf)
    assert fullchain_pem.startswith(cert_pem)
    assert (live / "combined.pem").read_bytes() == fullchain_pem + key_pem


def _live_meta(root: Path, name: str = "a.example") -> dict:
    return json.loads((root / "live" / name / "meta.json").read_text())


def _assert_index_agrees_with_live(root: Path, name: str = "a.example") -> None:
    entry = json.loads((root / "index.json").read_text())["certificates"][name]
    meta = _live_meta(root, name)
    assert (entry["version"], entry["serial"]) == (os.readlink(root / "live" / name).rsplit("/", 1)[-1], meta["serial"])
    assert (entry["identifiers"], entry["key_type"]) == ([name], "ecdsa-p256")


def _temporaries(root: Path) -> list[str]:
    return [str(Path(d) / e) for d, dirs, names in os.walk(root) for e in dirs + names if e.startswith(TMP_PREFIX)]


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    root = tmp_path / "keystore"
    first = _run_driver(root)
    assert first.returncode == 0, first.stderr
    return root


@pytest.mark.slow
def test_sigkill_at_any_syscall_of_storing_leaves_live_complete_and_the_next_run_cleans_up(seeded: Path) -> None:
    counts = _syscall_counts(seeded)
    assert set(counts) == set(KILL_SYSCALLS)
    killed = 0

    for syscall, calls in counts.items():
        for n in range(1, calls + 1):
            run = _run_driver(seeded, "-e", f"inject={syscall}:signal=SIGKILL:when={n}")
            assert run.returncode == -9, (syscall, n, run.stderr)
            killed += 1
            _assert_live_is_a_complete_matching_pair(seeded)
            # Whatever the index says after the kill, `certman list` shows what is live.
            shown = listed(seeded)["a.example"]
            assert shown["serial"] == _live_meta(seeded)["serial"], (syscall, n)
            _assert_index_agrees_with_live(seeded)
            recovery = _run_driver(seeded)
            assert recovery.returncode == 0, (syscall, n, recovery.stderr)
            _assert_live_is_a_complete_matching_pair(seeded)
            _assert_index_agrees_with_live(seeded)
            assert _temporaries(seeded) == [], (syscall, n)

    assert killed == sum(counts.values())


# renameat 1 commits the version, 2 the spec, 3 the live link, 4 the index.
KILL_AFTER_THE_LINK_MOVED = "inject=renameat:signal=SIGKILL:when=4"


def _killed_after_the_link_moved(root: Path) -> str:
    """Kill a store between moving live/a.example and the index; return the stale serial."""
    stale = json.loads((root / "index.json").read_text())["certificates"]["a.example"]["serial"]
    run = _run_driver(root, "-e", KILL_AFTER_THE_LINK_MOVED)
    assert run.returncode == -9, run.stderr
    assert _live_meta(root)["serial"] != stale
    assert json.loads((root / "index.json").read_text())["certificates"]["a.example"]["serial"] == stale
    return stale


def test_storing_another_certificate_after_such_a_crash_repairs_the_index(seeded: Path) -> None:
    _killed_after_the_link_moved(seeded)

    assert _run_driver(seeded, name="b.example").returncode == 0

    _assert_index_agrees_with_live(seeded, "a.example")
    _assert_index_agrees_with_live(seeded, "b.example")


def test_clean_leftovers_of_the_certificate_repairs_its_index_entry(seeded: Path) -> None:
    _killed_after_the_link_moved(seeded)

    FileKeystore(seeded).clean_leftovers("a.example")

    _assert_index_agrees_with_live(seeded)


def test_renew_after_such_a_crash_plans_from_the_live_version(seeded: Path) -> None:
    _killed_after_the_link_moved(seeded)

    done = subprocess.run(
        [sys.executable, "-m", "certman", "--keystore", str(seeded), "renew", "--check", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    [planned] = json.loads(done.stdout)["certificates"]
    assert planned["serial"] == _live_meta(seeded)["serial"]
    _assert_index_agrees_with_live(seeded)


def test_repair_index_adds_a_first_version_whose_index_entry_a_crash_lost(seeded: Path) -> None:
    # The first store of b.example, killed after its link moved: the index has no entry at all.
    run = _run_driver(seeded, "-e", KILL_AFTER_THE_LINK_MOVED, name="b.example")
    assert run.returncode == -9, run.stderr
    keystore = FileKeystore(seeded)
    assert "b.example" not in keystore.read_index() and keystore.crashed()

    assert keystore.repair_index() == ["b.example"]

    _assert_index_agrees_with_live(seeded, "b.example")
    assert listed(seeded)["b.example"]["serial"] == _live_meta(seeded, "b.example")["serial"]


@pytest.mark.slow
def test_a_full_disk_at_any_write_gives_a_storage_error_and_changes_nothing(seeded: Path) -> None:
    counts = _syscall_counts(seeded)
    before = snapshot(seeded)

    for syscall in ENOSPC_SYSCALLS:
        for n in range(1, counts[syscall] + 1):
            run = _run_driver(seeded, "-e", f"inject={syscall}:error=ENOSPC:when={n}")
            assert run.returncode == 3, (syscall, n, run.stderr)
            assert re.fullmatch(r"certman: no space left while [a-z ]+ /\S+\n", run.stderr), run.stderr
            assert snapshot(seeded) == before, (syscall, n)


def test_clean_leftovers_removes_only_this_certificates_temporaries(tmp_path: Path) -> None:
    keystore = FileKeystore(tmp_path / "keystore")
    live = keystore.root / "live"
    live.mkdir(mode=0o700)
    ours, theirs = live / f"{TMP_PREFIX}a.example~0123", live / f"{TMP_PREFIX}b.example~4567"
    ours.symlink_to("nowhere")
    theirs.symlink_to("nowhere")

    removed = keystore.clean_leftovers("a.example")

    assert removed == [ours]
    assert theirs.is_symlink()


FULL_DISK_SCRIPT = """
set -e
mount -t tmpfs -o size=256k tmpfs "$DISK"
"$PYTHON" "$DRIVER" "$DISK/keystore"
"$PYTHON" -c "$SNAPSHOT" "$DISK/keystore" > "$OUT/before"
dd if=/dev/zero of="$DISK/filler" bs=4k 2>/dev/null || true
set +e
"$PYTHON" "$DRIVER" "$DISK/keystore" 2> "$OUT/stderr"
echo $? > "$OUT/rc"
"$PYTHON" -c "$SNAPSHOT" "$DISK/keystore" > "$OUT/after"
"""

SNAPSHOT = (
    f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
    "from fixtures.snapshot import snapshot; from pathlib import Path; "
    "print(sorted(snapshot(Path(sys.argv[1])).items()))"
)


def test_a_really_full_disk_gives_a_storage_error_and_keeps_the_previous_version(tmp_path: Path) -> None:
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    env = {
        **os.environ,
        "DISK": str(disk),
        "OUT": str(out),
        "PYTHON": sys.executable,
        "DRIVER": str(DRIVER),
        "SNAPSHOT": SNAPSHOT,
    }

    # A private mount namespace: the small tmpfs vanishes with the script.
    done = subprocess.run(
        [services.require_binary("unshare", "util-linux"), "-m", "sh", "-c", FULL_DISK_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert (out / "rc").read_text().strip() == "3"
    assert re.fullmatch(r"certman: no space left while [a-z ]+ /\S+\n", (out / "stderr").read_text())
    assert (out / "before").read_text() == (out / "after").read_text()
    assert "privkey.pem" in (out / "before").read_text()


def _certman_issue(pebble: services.Pebble, keystore: Path, *strace_args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "certman",
        "--keystore",
        str(keystore),
        "issue",
        "--server",
        pebble.directory_url,
        "--ca-bundle",
        str(pebble.ca_bundle),
        "--agree-tos",
        "--http-address",
        "127.0.0.1",
        "--http-port",
        str(pebble.http_port),
        "a.example",
    ]
    if strace_args:
        argv = [services.require_binary("strace", "strace"), "-f", "-o", os.devnull, *strace_args, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_sigkill_at_any_rename_of_a_whole_issuance_leaves_a_usable_keystore(
    pebble: services.Pebble, tmp_path: Path
) -> None:
    keystore = tmp_path / "keystore"
    first = _certman_issue(pebble, keystore)
    assert first.returncode == 0, first.stderr
    summary = tmp_path / "summary.txt"
    counted = _certman_issue(
        pebble, keystore, "-c", "-U", "name,calls", "-e", "trace=rename,renameat", "-o", str(summary)
    )
    assert counted.returncode == 0, counted.stderr
    counts = {
        m.group(1): int(m.group(2)) for m in re.finditer(r"^(rename|renameat)\s+(\d+)$", summary.read_text(), re.M)
    }
    # The kept order (order-key.pem, order.json), then version, spec, link and index: all by
    # renameat, relative to a directory descriptor (issue 12 kind 6).
    assert counts.get("rename", 0) + counts["renameat"] >= 6 and counts["renameat"] >= 6

    for syscall, calls in counts.items():
        for n in range(1, calls + 1):
            killed = _certman_issue(pebble, keystore, "-e", f"inject={syscall}:signal=SIGKILL:when={n}")
            assert killed.returncode == -9, (syscall, n, killed.stderr)
            _assert_live_is_a_complete_matching_pair(keystore)
            again = _certman_issue(pebble, keystore)
            assert again.returncode == 0, (syscall, n, again.stderr)
            _assert_live_is_a_complete_matching_pair(keystore)
            assert _temporaries(keystore) == [], (syscall, n)
            assert not (keystore / "certs/a.example/order.json").exists(), (syscall, n)


FULL_DISK_ISSUE_SCRIPT = """
set -e
mount -t tmpfs -o size=256k tmpfs "$DISK"
"$PYTHON" -m certman --keystore "$DISK/keystore" issue $FLAGS --reload-cmd "$HOOK" a.example > /dev/null
rm "$MARKER"
dd if=/dev/zero of="$DISK/filler" bs=4k 2>/dev/null || true
set +e
"$PYTHON" -m certman --keystore "$DISK/keystore" issue $FLAGS --reload-cmd "$HOOK" a.example 2> "$OUT/stderr"
echo $? > "$OUT/rc"
"""


def test_a_full_disk_during_issue_runs_no_reload_hook(pebble: services.Pebble, tmp_path: Path) -> None:
    disk, out, marker = tmp_path / "disk", tmp_path / "out", tmp_path / "hook-ran"
    disk.mkdir()
    out.mkdir()
    hook = json.dumps([sys.executable, "-c", "import sys; open(sys.argv[1], 'w').close()", str(marker)])
    flags = (
        f"--server {pebble.directory_url} --ca-bundle {pebble.ca_bundle} --agree-tos "
        f"--http-address 127.0.0.1 --http-port {pebble.http_port}"
    )
    env = {
        **os.environ,
        "DISK": str(disk),
        "OUT": str(out),
        "PYTHON": sys.executable,
        "FLAGS": flags,
        "HOOK": hook,
        "MARKER": str(marker),
    }

    done = subprocess.run(
        [services.require_binary("unshare", "util-linux"), "-m", "sh", "-c", FULL_DISK_ISSUE_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert (out / "rc").read_text().strip() == "3"
    assert "no space left" in (out / "stderr").read_text()
    assert not marker.exists()
