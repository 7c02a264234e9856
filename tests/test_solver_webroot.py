"""The webroot HTTP-01 solver: a symlink planted in the document root is refused, never followed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from certman.errors import SolverError
from certman.names import Identifier
from certman.solvers import Challenge
from certman.solvers.http01.webroot import WebrootSettings, WebrootSolver

TOKEN = "A" * 43


@pytest.mark.parametrize("planted", [".well-known", ".well-known/acme-challenge"])
def test_a_symlink_planted_in_the_webroot_is_refused_and_not_followed(tmp_path: Path, planted: str) -> None:
    webroot = tmp_path / "www"
    (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.mkdir()
    shutil.rmtree(webroot / planted)
    (webroot / planted).symlink_to(target)
    solver = WebrootSolver(WebrootSettings(webroot))
    batch = (Challenge(Identifier("dns", "a.example"), "http-01", TOKEN, TOKEN + ".thumb"),)

    with pytest.raises(SolverError, match=f"refusing to follow the symlink {re.escape(str(webroot / planted))}"):
        solver.present(batch)

    assert list(target.iterdir()) == []


def test_cleanup_removes_through_the_handles_present_used_even_after_a_swap(tmp_path: Path) -> None:
    # issue 12 kind 6: the web user swaps acme-challenge for a symlink between present and cleanup.
    webroot, elsewhere, moved = tmp_path / "www", tmp_path / "elsewhere", tmp_path / "moved"
    webroot.mkdir()
    elsewhere.mkdir()
    (elsewhere / TOKEN).write_text("theirs")
    solver = WebrootSolver(WebrootSettings(webroot))
    batch = (Challenge(Identifier("dns", "a.example"), "http-01", TOKEN, TOKEN + ".thumb"),)
    solver.present(batch)
    challenge_dir = webroot / ".well-known" / "acme-challenge"
    assert (challenge_dir / TOKEN).read_text() == TOKEN + ".thumb"
    challenge_dir.rename(moved)
    challenge_dir.symlink_to(elsewhere)

    solver.cleanup(batch)

    assert (elsewhere / TOKEN).read_text() == "theirs"
    assert list(moved.iterdir()) == []
    # The swapped-in link is not a directory certman made: it stays, and so does its parent.
    assert challenge_dir.is_symlink()


def test_cleanup_removes_the_directories_present_created_and_only_those(tmp_path: Path) -> None:
    webroot = tmp_path / "www"
    (webroot / ".well-known").mkdir(parents=True)
    solver = WebrootSolver(WebrootSettings(webroot))
    batch = (Challenge(Identifier("dns", "a.example"), "http-01", TOKEN, TOKEN + ".thumb"),)

    solver.present(batch)
    solver.cleanup(batch)

    assert [p.name for p in webroot.rglob("*")] == [".well-known"]
