"""A store records its index entry as one line of ``index.journal`` instead of rewriting
``index.json`` whole (issue 15: O(1) per store, not O(N)); every reader applies the
journal, and a whole write of the index folds it in once it outgrows an eighth of it.
Offline: certificates are made locally; the crash sweep kills the store_version driver
at each syscall with strace, as tests/test_keystore_crash_safety.py does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import services
from fixtures.listing import listed, store

from certman.config import Settings
from certman.keystore import FileKeystore
from certman.keystore.journal import JOURNAL_FILE
from certman.keystore.layout import TMP_PREFIX
from certman.renewal.job import renew

DRIVER = Path(__file__).parent / "drivers" / "store_version.py"
SEEDED = 16


@pytest.fixture
def keystore(tmp_path: Path) -> FileKeystore:
    """Sixteen certificates, their index written whole by a renew run."""
    keystore = FileKeystore(tmp_path / "keystore")
    for i in range(SEEDED):
        store(keystore, f"c{i}.example", [f"c{i}.example"], 10, 90)
    renew(keystore, Settings(keystore=keystore.root))
    assert not (keystore.root / JOURNAL_FILE).exists()
    return keystore


def _journal(keystore: FileKeystore) -> list[bytes]:
    return (keystore.root / JOURNAL_FILE).read_bytes().splitlines()


def _live_serial(root: Path, name: str) -> str:
    return json.loads((root / "live" / name / "meta.json").read_text())["serial"]


def test_a_store_appends_one_journal_line_and_leaves_index_json_as_it_was(keystore: FileKeystore):
    before = keystore.layout.index.read_bytes()

    meta = store(keystore, "new.example", ["new.example"], 0, 90)

    assert keystore.layout.index.read_bytes() == before
    [_, line] = _journal(keystore)
    assert json.loads(line)[0] == "new.example"
    assert keystore.read_index()["new.example"].serial == meta.serial


def test_every_reader_sees_the_entries_in_the_journal(keystore: FileKeystore):
    meta = store(keystore, "c3.example", ["c3.example"], 0, 90)

    assert listed(keystore.root)["c3.example"]["serial"] == meta.serial
    quiet = keystore.read_quiet()
    assert quiet is not None and quiet["c3.example"].serial == meta.serial
    assert len(keystore.read_index()) == SEEDED


def test_a_removed_certificate_leaves_the_index_by_a_journal_line(keystore: FileKeystore):
    with keystore.lock_cert("c5.example"):
        keystore.archive_cert("c5.example", "20261201T000000Z")

    assert "c5.example" not in keystore.read_index()
    assert json.loads(_journal(keystore)[-1]) == ["c5.example", None]


def test_the_journal_is_folded_into_index_json_once_it_outgrows_an_eighth_of_it(keystore: FileKeystore):
    size = keystore.layout.index.stat().st_size
    stored = 0
    while (keystore.root / JOURNAL_FILE).exists() or stored == 0:
        store(keystore, f"n{stored}.example", [f"n{stored}.example"], 0, 90)
        stored += 1
        assert stored < SEEDED

    # The store that found no room wrote the whole index, every journal line in it.
    certificates = json.loads(keystore.layout.index.read_bytes())["certificates"]
    assert {f"n{i}.example" for i in range(stored)} <= set(certificates)
    assert stored > 1 and keystore.layout.index.stat().st_size > size


def test_a_renew_run_folds_the_journal_into_index_json(keystore: FileKeystore):
    meta = store(keystore, "c7.example", ["c7.example"], 0, 90)

    renew(keystore, Settings(keystore=keystore.root))

    assert not (keystore.root / JOURNAL_FILE).exists()
    entry = json.loads(keystore.layout.index.read_bytes())["certificates"]["c7.example"]
    assert entry["serial"] == meta.serial and entry["renewal"]


def test_a_journal_of_another_index_is_not_applied(keystore: FileKeystore):
    store(keystore, "c1.example", ["c1.example"], 0, 90)
    stale = (keystore.root / JOURNAL_FILE).read_bytes()
    before = keystore.read_index()["c1.example"]
    renew(keystore, Settings(keystore=keystore.root))  # writes the index whole, with a new token
    store(keystore, "c2.example", ["c2.example"], 0, 90)

    (keystore.root / JOURNAL_FILE).write_bytes(stale.replace(b"c1.example", b"c2.example"))

    assert keystore.read_index()["c2.example"].serial != before.serial
    assert keystore.read_index()["c1.example"].serial == before.serial


def test_a_line_a_killed_store_cut_short_is_not_applied_and_the_next_store_writes_the_whole_index(
    keystore: FileKeystore,
):
    before = keystore.read_index()["c2.example"]
    store(keystore, "c2.example", ["c2.example"], 0, 90)
    journal = keystore.root / JOURNAL_FILE
    journal.write_bytes(journal.read_bytes()[:-20])
    assert keystore.read_index()["c2.example"] == before

    meta = store(keystore, "c4.example", ["c4.example"], 0, 90)

    assert not journal.exists()
    assert json.loads(keystore.layout.index.read_bytes())["certificates"]["c4.example"]["serial"] == meta.serial


def test_an_index_written_before_the_journal_is_written_whole_by_the_next_store(keystore: FileKeystore):
    data = json.loads(keystore.layout.index.read_bytes())
    del data["journal"]
    data["format"] = 2
    keystore.layout.index.write_text(json.dumps(data))

    meta = store(keystore, "c6.example", ["c6.example"], 0, 90)

    assert not (keystore.root / JOURNAL_FILE).exists()
    assert json.loads(keystore.layout.index.read_bytes())["certificates"]["c6.example"]["serial"] == meta.serial


def _run_driver(root: Path, *strace_args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(DRIVER), str(root), "c0.example"]
    if strace_args:
        argv = [services.require_binary("strace", "strace"), "-f", "-o", os.devnull, *strace_args, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_a_store_killed_at_its_journal_write_is_listed_as_live_after_the_next_store(keystore: FileKeystore):
    root = keystore.root
    stale = keystore.read_index()["c0.example"].serial
    # writes 1-6 are the version's files, 7 the spec, 8 the staged line, 9 the journal (its first line).
    killed = _run_driver(root, "-e", "inject=write:signal=SIGKILL:when=9")
    assert killed.returncode == -9, killed.stderr
    assert _live_serial(root, "c0.example") != stale
    assert any(e.startswith(TMP_PREFIX) for e in os.listdir(root))

    assert _run_driver(root).returncode == 0

    assert listed(root)["c0.example"]["serial"] == _live_serial(root, "c0.example")


@pytest.mark.slow
def test_sigkill_at_any_syscall_of_a_journalled_store_leaves_the_index_agreeing_with_live(keystore: FileKeystore):
    root = keystore.root
    for syscall in ("renameat", "symlinkat", "write", "fsync"):
        for n in range(1, 30):
            run = _run_driver(root, "-e", f"inject={syscall}:signal=SIGKILL:when={n}")
            if run.returncode == 0:
                break  # past the store's last call of this kind
            assert run.returncode == -9, (syscall, n, run.stderr)
            # Whatever the kill left, `certman list` shows what is live.
            assert listed(root)["c0.example"]["serial"] == _live_serial(root, "c0.example"), (syscall, n)
            assert _run_driver(root).returncode == 0, (syscall, n)
            assert listed(root)["c0.example"]["serial"] == _live_serial(root, "c0.example"), (syscall, n)
