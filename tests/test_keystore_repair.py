"""State follows outcomes, and live/<name> changed from outside is put back, the way the
timer runs certman: the real CLI as a subprocess, from /, with ``env -i PATH=/usr/bin:/bin``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import services
from fixtures.cli import issue_flags

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = {"PATH": "/usr/bin:/bin"}


def certman(keystore: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``certman --keystore KEYSTORE ARGS`` as the timer runs it: from /, with an empty environment."""
    return subprocess.run(
        [CERTMAN, "--keystore", str(keystore), *args],
        cwd="/",
        env=TIMER_ENV,
        capture_output=True,
        text=True,
        timeout=180,
    )


def issue(keystore: Path, pebble: services.Pebble, name: str) -> subprocess.CompletedProcess[str]:
    done = certman(keystore, "issue", *issue_flags(pebble), name)
    assert done.returncode == 0, done.stderr
    return done


def renew_json(keystore: Path, *args: str, code: int = 0) -> dict[str, object]:
    done = certman(keystore, "renew", "--jobs", "1", "--json", *args)
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def only_result(report: dict[str, object]) -> dict[str, object]:
    [result] = report["certificates"]  # type: ignore[misc]
    assert isinstance(result, dict)
    return result


def state_of(keystore: Path, name: str) -> dict[str, object]:
    path = keystore / "certs" / name / "state.json"
    loaded: dict[str, object] = json.loads(path.read_text())
    return loaded


def live_target(keystore: Path, name: str) -> str:
    return os.readlink(keystore / "live" / name)


# -- success clears failure ------------------------------------------------------------


def test_a_successful_issue_after_a_failed_renew_clears_the_failure(pebble: services.Pebble, tmp_path: Path) -> None:
    keystore = tmp_path / "keystore"
    issue(keystore, pebble, "again.example")
    with socket.socket() as squatter:
        # Something else holds the standalone solver's port: the forced renewal fails.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", pebble.http_port))
        squatter.listen()
        failed = only_result(renew_json(keystore, "--force", code=7))
    assert failed["action"] == "failed"
    assert state_of(keystore, "again.example")["consecutive_failures"] == 1
    issue(keystore, pebble, "again.example")
    state = state_of(keystore, "again.example")
    assert (state["consecutive_failures"], state["last_error"], state["next_attempt"], state["retry_after"]) == (
        0,
        None,
        None,
        None,
    )
    assert state["last_success"] is not None and state["last_success"] >= state["last_failure"]  # type: ignore[operator]
    result = only_result(renew_json(keystore))
    assert (result["action"], result["error"], result["consecutive_failures"]) == ("skipped", None, 0)
    assert "backing off" not in str(result["reason"])


def test_a_successful_renew_after_a_failed_one_clears_the_failure(pebble: services.Pebble, tmp_path: Path) -> None:
    keystore = tmp_path / "keystore"
    issue(keystore, pebble, "renewed.example")
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", pebble.http_port))
        squatter.listen()
        renew_json(keystore, "--force", code=7)
    assert only_result(renew_json(keystore, "--force"))["action"] == "renewed"
    state = state_of(keystore, "renewed.example")
    assert (state["consecutive_failures"], state["last_error"], state["next_attempt"]) == (0, None, None)
    assert only_result(renew_json(keystore))["error"] is None


# -- live/<name> changed from outside ------------------------------------------------------


def _make_directory(live: Path) -> None:
    # What `cp -rL` of a backup leaves: a real directory holding copies of the files.
    copy = live.parent / ".restore"
    shutil.copytree(live, copy, symlinks=False)
    live.unlink()
    copy.rename(live)


def _make_file(live: Path) -> None:
    data = (live / "fullchain.pem").read_bytes()
    live.unlink()
    live.write_bytes(data)


def _remove(live: Path) -> None:
    live.unlink()


BREAKAGES = {"directory": _make_directory, "file": _make_file, "missing": _remove}


def _assert_repaired(keystore: Path, name: str, target: str, found: str, repairs: object) -> None:
    live = keystore / "live" / name
    assert live.is_symlink() and os.readlink(live) == target
    assert (live / "fullchain.pem").is_file()
    [repair] = repairs  # type: ignore[misc]
    assert repair["name"] == name and repair["path"] == str(live) and repair["found"] == found
    assert repair["version"] == os.path.basename(target)
    if found == "missing":
        assert repair["archived_to"] is None
    else:
        archived = Path(repair["archived_to"])
        assert archived.parent == keystore / "archive" / "live" and archived.name.startswith(f"{name}-")
        assert archived.is_dir() if found == "directory" else archived.is_file()


@pytest.mark.parametrize("found", sorted(BREAKAGES))
def test_renew_puts_back_live_and_says_so(pebble: services.Pebble, tmp_path: Path, found: str) -> None:
    keystore = tmp_path / "keystore"
    issue(keystore, pebble, "restored.example")
    target = live_target(keystore, "restored.example")
    BREAKAGES[found](keystore / "live" / "restored.example")
    report = renew_json(keystore)
    assert only_result(report)["action"] == "skipped"
    _assert_repaired(keystore, "restored.example", target, found, report["repaired"])
    # The human output says it too, and the next run has nothing left to repair.
    BREAKAGES[found](keystore / "live" / "restored.example")
    done = certman(keystore, "renew")
    assert done.returncode == 0, done.stderr
    assert f"repaired {keystore / 'live' / 'restored.example'}" in done.stdout
    assert renew_json(keystore)["repaired"] == []


@pytest.mark.parametrize("found", sorted(BREAKAGES))
def test_issue_puts_back_live_and_says_so(pebble: services.Pebble, tmp_path: Path, found: str) -> None:
    keystore = tmp_path / "keystore"
    issue(keystore, pebble, "reissued.example")
    BREAKAGES[found](keystore / "live" / "reissued.example")
    done = certman(keystore, "issue", *issue_flags(pebble), "--json", "reissued.example")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["version"] == "000002"
    [repair] = result["repaired"]
    assert (repair["found"], repair["version"]) == (found, "000001")
    live = keystore / "live" / "reissued.example"
    assert live.is_symlink() and os.readlink(live).endswith("/000002")
    BREAKAGES[found](live)
    human = certman(keystore, "issue", *issue_flags(pebble), "reissued.example")
    assert human.returncode == 0, human.stderr
    assert f"repaired {live}: it was " in human.stdout


@pytest.mark.parametrize("found", sorted(BREAKAGES))
def test_doctor_reports_a_live_path_that_is_not_a_link(pebble: services.Pebble, tmp_path: Path, found: str) -> None:
    keystore = tmp_path / "keystore"
    issue(keystore, pebble, "doctored.example")
    live = keystore / "live" / "doctored.example"
    BREAKAGES[found](live)
    done = certman(keystore, "doctor", "--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle))
    fails = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert any(str(live) in line and "`certman renew` repairs it" in line for line in fails), done.stdout
    assert done.returncode == 1
    # doctor only reports: the path is as it found it.
    assert live.is_symlink() is False
    certman(keystore, "renew")
    after = certman(keystore, "doctor", "--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle))
    assert str(live) not in "".join(line for line in after.stdout.splitlines() if line.startswith("FAIL"))


@pytest.mark.parametrize("command", ["show", "revoke"])
def test_other_commands_name_the_broken_live_path_and_the_repair(
    pebble: services.Pebble, tmp_path: Path, command: str
) -> None:
    keystore = tmp_path / "keystore"
    issue(keystore, pebble, "shown.example")
    live = keystore / "live" / "shown.example"
    _make_directory(live)
    done = certman(keystore, command, "shown.example")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert str(live) in done.stderr and "certman renew" in done.stderr


def test_a_deleted_index_is_rebuilt_from_live_by_list_and_renew(pebble: services.Pebble, tmp_path: Path) -> None:
    keystore = tmp_path / "keystore"
    names = ("lost-a.example", "lost-b.example")
    for name in names:
        issue(keystore, pebble, name)
    (keystore / "index.json").unlink()

    listed = certman(keystore, "list", "--json")
    report = renew_json(keystore)

    assert listed.returncode == 0, listed.stderr
    assert sorted(c["name"] for c in json.loads(listed.stdout)["certificates"]) == list(names)
    assert {r["name"]: r["action"] for r in report["certificates"]} == dict.fromkeys(names, "skipped")  # type: ignore[union-attr]
