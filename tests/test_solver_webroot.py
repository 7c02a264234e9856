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
