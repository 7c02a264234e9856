"""Reload hooks: the command reloader, one run per distinct reloader per batch, and
"issued, not deployed" retried without issuing again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fixtures.renewal import RenewEnv

from certman.deploy.reloaders import Deployment
from certman.deploy.reloaders.command import CommandReloader
from certman.errors import ReloadError, UsageError
from certman.keystore import LivePaths
from certman.renewal.job import renew

RECORD_ENV = (
    "import json, os, sys; "
    "open(sys.argv[1], 'a').write(json.dumps({k: v for k, v in os.environ.items() "
    "if k.startswith('CERTMAN_')}) + '\\n')"
)
FAIL_IF_MARKED = "import os, sys; sys.exit(3 if os.path.exists(sys.argv[1]) else 0)"


def recorder(log: Path) -> dict[str, object]:
    return {"name": "command", "argv": [sys.executable, "-c", RECORD_ENV, str(log)]}


def calls(log: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def deployment(tmp_path: Path, name: str) -> Deployment:
    return Deployment(name, (name, f"www.{name}"), "01", LivePaths(tmp_path / "live" / name))


def test_the_command_gets_the_certificate_in_its_environment(tmp_path: Path):
    log = tmp_path / "calls"
    CommandReloader.from_options({"argv": recorder(log)["argv"]}).reload([deployment(tmp_path, "a.example")])
    [env] = calls(log)
    assert env["CERTMAN_NAME"] == "a.example"
    assert env["CERTMAN_DOMAINS"] == "a.example www.a.example"
    assert env["CERTMAN_LIVE_DIR"] == str(tmp_path / "live" / "a.example")
    assert env["CERTMAN_FULLCHAIN"] == str(tmp_path / "live" / "a.example" / "fullchain.pem")
    assert env["CERTMAN_PRIVKEY"] == str(tmp_path / "live" / "a.example" / "privkey.pem")


def test_the_command_runs_without_a_shell(tmp_path: Path):
    marker = tmp_path / "injected"
    log = tmp_path / "argument"
    hostile = f"; touch {marker} $(touch {marker})"
    argv = [sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])", str(log), hostile]
    CommandReloader.from_options({"argv": argv}).reload([deployment(tmp_path, "a.example")])
    assert log.read_text() == hostile
    assert not marker.exists()


def test_a_failing_command_is_a_reload_error_with_its_output(tmp_path: Path):
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('nginx: bad config'); sys.exit(1)"]
    with pytest.raises(ReloadError, match="exited with status 1") as caught:
        CommandReloader.from_options({"argv": argv}).reload([deployment(tmp_path, "a.example")])
    assert caught.value.hint == "nginx: bad config"


def test_a_command_that_hangs_is_killed_at_its_timeout(tmp_path: Path):
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(ReloadError, match="did not finish within 0.2 s"):
        CommandReloader.from_options({"argv": argv, "timeout": 0.2}).reload([deployment(tmp_path, "a.example")])


def test_argv_must_be_a_list_of_strings():
    with pytest.raises(UsageError, match="argv must be a non-empty list"):
        CommandReloader.from_options({"argv": "systemctl reload nginx"})


def test_one_reloader_runs_once_for_all_the_certificates_it_serves(renew_env: RenewEnv, tmp_path: Path):
    log = tmp_path / "calls"
    tables = tuple({"names": [n], "reloader": [recorder(log)]} for n in ("one.example", "two.example"))
    report = renew(renew_env.keystore, renew_env.settings(certificates=tables), jobs=2)
    assert report.exit_code == 0
    [env] = calls(log)
    assert env["CERTMAN_NAME"] == "one.example two.example"
    assert env["CERTMAN_FULLCHAIN"].split(":") == [
        str(renew_env.keystore.live(n).fullchain) for n in ("one.example", "two.example")
    ]


def test_a_failing_hook_leaves_the_certificate_issued_but_not_deployed(renew_env: RenewEnv, tmp_path: Path):
    marker = tmp_path / "proxy-broken"
    marker.touch()
    hook = {"name": "command", "argv": [sys.executable, "-c", FAIL_IF_MARKED, str(marker)]}
    settings = renew_env.settings(certificates=({"names": ["hooked.example"], "reloader": [hook]},))
    report = renew(renew_env.keystore, settings)
    result = report.results[0]
    assert report.exit_code == 7
    assert result.action == "issued"
    assert result.error.startswith("issued, not deployed: reload command")
    assert renew_env.keystore.read_state("hooked.example").deploy.pending is True


def test_the_next_run_retries_the_deploy_without_issuing_again(renew_env: RenewEnv, tmp_path: Path):
    marker = tmp_path / "proxy-broken"
    marker.touch()
    hook = {"name": "command", "argv": [sys.executable, "-c", FAIL_IF_MARKED, str(marker)]}
    settings = renew_env.settings(certificates=({"names": ["hooked.example"], "reloader": [hook]},))
    renew(renew_env.keystore, settings)
    marker.unlink()
    report = renew(renew_env.keystore, settings)
    assert report.results[0].action == "deployed"
    assert report.exit_code == 0
    assert renew_env.keystore.versions("hooked.example") == ["000001"]
    assert renew_env.keystore.read_state("hooked.example").deploy.pending is False
