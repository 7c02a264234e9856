"""Directory creation is idempotent under concurrency: runs that create the same
directories at once (a parallel renew on a fresh keystore, two solvers sharing a
webroot) all succeed."""

from __future__ import annotations

import concurrent.futures
import stat
import threading
from pathlib import Path

from certman.keystore import FileKeystore
from certman.keystore.files import ensure_dir
from certman.names import Identifier
from certman.solvers import Challenge
from certman.solvers.http01.webroot import WebrootSettings, WebrootSolver

THREADS = 16
ROUNDS = 30


def _all_at_once(work, count: int = THREADS) -> None:
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        work(i)

    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(run, range(count)))


def test_directories_sharing_missing_parents_are_created_by_every_thread(tmp_path: Path):
    for round_ in range(ROUNDS):
        base = tmp_path / f"r{round_}"
        base.mkdir(mode=0o700)
        _all_at_once(lambda i, base=base: ensure_dir(base / "certs" / f"c{i}" / "versions"))
        assert sorted(p.name for p in (base / "certs").iterdir()) == sorted(f"c{i}" for i in range(THREADS))
        assert stat.S_IMODE((base / "certs").stat().st_mode) == 0o700


def test_parallel_first_locks_on_a_fresh_keystore_all_succeed(tmp_path: Path):
    for round_ in range(ROUNDS):
        keystore = FileKeystore(tmp_path / f"ks{round_}")

        def lock(i: int, keystore: FileKeystore = keystore) -> None:
            with keystore.lock_cert(f"c{i}.example"):
                pass

        _all_at_once(lock)
        assert len(list(keystore.layout.locks.iterdir())) == THREADS


def test_webroot_solvers_sharing_a_webroot_present_and_clean_up_concurrently(tmp_path: Path):
    webroot = tmp_path / "www"
    webroot.mkdir()

    def solve(i: int) -> None:
        solver = WebrootSolver(WebrootSettings(webroot))
        token = f"{'t' * 40}{i:03d}"
        batch = (Challenge(Identifier("dns", f"c{i}.example"), "http-01", token, token + ".thumb"),)
        for _ in range(ROUNDS):
            try:
                solver.present(batch)
                assert (webroot / ".well-known" / "acme-challenge" / token).read_text() == token + ".thumb"
            finally:
                solver.cleanup(batch)

    _all_at_once(solve, 8)
    # Each solver removes only what it made: directories another still used may stay, files never do.
    challenge_dir = webroot / ".well-known" / "acme-challenge"
    assert not challenge_dir.exists() or not list(challenge_dir.iterdir())
