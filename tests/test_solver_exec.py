"""The exec DNS provider: argv without a shell, context in env, clear failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from certman.errors import ConfigError, SolverError
from certman.solvers.dns01.exec import ExecProvider


def script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "hook"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return path


def test_arguments_reach_the_program_unsplit_and_unexpanded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    hook = script(tmp_path, f'printf "%s|" "$@" "$CERTMAN_DNS_ACTION" "$CERTMAN_DNS_FQDN" > {out}\n')
    ExecProvider.from_options({"program": str(hook)}, {}).add_txt("_acme-challenge.x.test.", "a b;$(id)")
    assert out.read_text() == "present|_acme-challenge.x.test.|a b;$(id)|present|_acme-challenge.x.test.|"


def test_a_failing_program_is_a_solver_error_with_its_last_stderr_line(tmp_path: Path) -> None:
    hook = script(tmp_path, 'echo "first" >&2\necho "API said: zone locked" >&2\nexit 3\n')
    with pytest.raises(SolverError, match="exited with 3: API said: zone locked"):
        ExecProvider.from_options({"program": str(hook)}, {}).remove_txt("_acme-challenge.x.test.", "v")


def test_a_program_that_hangs_is_killed_after_its_timeout(tmp_path: Path) -> None:
    hook = script(tmp_path, "exec sleep 30\n")
    with pytest.raises(SolverError, match="did not finish within 0.3 s"):
        ExecProvider.from_options({"program": str(hook), "timeout": 0.3}, {}).add_txt("_acme-challenge.x.test.", "v")


def test_a_program_that_is_not_executable_is_a_config_error(tmp_path: Path) -> None:
    plain = tmp_path / "hook.txt"
    plain.write_text("not a program")
    with pytest.raises(ConfigError, match="not an executable file"):
        ExecProvider.from_options({"program": str(plain)}, {})
