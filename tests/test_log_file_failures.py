"""A run that fails before anything is stored still leaves its lines in the run log: a
certman.toml broken between two runs, as a timer meets it at 3 a.m., is read at 9."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import services
from fixtures.cli import issue_flags

CERTMAN = str(Path(sys.executable).parent / "certman")


def run(*args: str, config: Path, keystore: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "CERTMAN_CONFIG": str(config)}
    if keystore is not None:
        env["CERTMAN_KEYSTORE"] = str(keystore)
    return subprocess.run([CERTMAN, *args], capture_output=True, text=True, timeout=120, env=env, cwd="/")


def log_lines(keystore: Path) -> list[str]:
    day = datetime.datetime.now(datetime.UTC).date().isoformat()
    return (keystore / "logs" / f"certman-{day}.log").read_text().splitlines()


def test_an_issue_run_stopped_by_a_broken_config_logs_its_start_and_its_error(
    pebble: services.Pebble, tmp_path: Path
) -> None:
    keystore, config = tmp_path / "keystore", tmp_path / "certman.toml"
    config.write_text("")
    assert run("issue", *issue_flags(pebble), "first.example", config=config, keystore=keystore).returncode == 0
    config.write_text("email = ops@example.com\n")  # unquoted: not TOML

    done = run("issue", *issue_flags(pebble), "second.example", config=config, keystore=keystore)

    assert done.returncode == 2
    start, end = log_lines(keystore)[-2:]
    assert start.endswith("certman issue")
    assert f"exit 2: config file {config} is not valid TOML" in end and "(hint: strings need quotes" in end


def test_a_renew_run_logs_to_the_keystore_the_broken_file_names(pebble: services.Pebble, tmp_path: Path) -> None:
    keystore, config = tmp_path / "keystore", tmp_path / "certman.toml"
    config.write_text(f'keystore = "{keystore}"\n')
    assert run("issue", *issue_flags(pebble), "timer.example", config=config).returncode == 0
    config.write_text(f'keystore = "{keystore}"\ntimeout = "soon"\n')  # valid TOML, a wrong type

    done = run("renew", config=config)

    assert done.returncode == 2
    start, end = log_lines(keystore)[-2:]
    assert start.endswith("certman renew") and "exit 2: " in end and "timeout" in end
