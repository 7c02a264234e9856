"""Bad input found in review: each case ends in one line, a hint and its documented exit code."""

from __future__ import annotations

from pathlib import Path

from fixtures.cli import CertmanRun
from test_cli_errors import assert_one_line_error


def test_keystore_under_proc_exits_3_naming_the_path(certman: CertmanRun) -> None:
    # /proc answers ENOENT to mkdir although the parent exists.
    assert_one_line_error(certman("--keystore", "/proc/nope", "list"), 3, "/proc/nope")


def test_keystore_with_missing_parents_is_created_0700(certman: CertmanRun, tmp_path: Path) -> None:
    keystore = tmp_path / "a" / "b" / "keystore"
    assert certman("--keystore", str(keystore), "list").exit_code == 0
    assert (keystore.stat().st_mode & 0o777, keystore.parent.stat().st_mode & 0o777) == (0o700, 0o700)
