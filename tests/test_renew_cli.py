"""`certman renew` and `certman issue --reload-cmd` from the command line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import tomli_w
from fixtures.renewal import RenewEnv

CERTMAN = str(Path(sys.executable).parent / "certman")


def write_config(env: RenewEnv, *certificates: dict[str, object]) -> Path:
    path = env.tmp_path / "certman.toml"
    settings = env.settings()
    path.write_text(
        tomli_w.dumps(
            {
                "server": settings.server,
                "ca_bundle": settings.ca_bundle,
                "agree_tos": True,
                "certificate": list(certificates),
            }
        )
    )
    return path


def run(env: RenewEnv, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The run-wide solver through the environment: `solver` in certman.toml is also the
    # name of the [[solver]] tables.
    environ = {
        **os.environ,
        "CERTMAN_CONFIG": str(config),
        "CERTMAN_KEYSTORE": str(env.keystore.root),
        "CERTMAN_SOLVER": "webroot",
        "CERTMAN_WEBROOT": str(env.webroot),
    }
    return subprocess.run([CERTMAN, *args], env=environ, capture_output=True, text=True, timeout=120)


def test_json_has_one_result_per_certificate(renew_env: RenewEnv):
    config = write_config(renew_env, {"names": ["json.example"]})
    done = run(renew_env, config, "renew", "--json")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["certificates"]
    assert result["name"] == "json.example"
    assert result["action"] == "issued"
    assert result["serial"] and result["not_after"] and result["next_renewal"]
    assert result["error"] is None


def test_a_failed_certificate_makes_the_run_exit_7_and_says_why(renew_env: RenewEnv):
    config = write_config(
        renew_env,
        {"names": ["ok.example"]},
        {"names": ["broken.example"], "solver": [{"name": "webroot", "path": "/nonexistent"}]},
    )
    done = run(renew_env, config, "renew", "--jobs", "2")
    assert done.returncode == 7
    assert "1 with an error" in done.stdout
    assert "broken.example  failed" in done.stdout
    assert "Traceback" not in done.stderr


def test_check_prints_what_is_due_without_issuing(renew_env: RenewEnv):
    config = write_config(renew_env, {"names": ["later.example"]})
    done = run(renew_env, config, "renew", "--check")
    assert done.returncode == 0
    assert "later.example  due" in done.stdout
    assert not renew_env.keystore.has("later.example")


def test_metrics_file_is_written_world_readable(renew_env: RenewEnv):
    config = write_config(renew_env, {"names": ["metric.example"]})
    metrics = renew_env.tmp_path / "certman.prom"
    done = run(renew_env, config, "renew", "--metrics-file", str(metrics))
    assert done.returncode == 0, done.stderr
    text = metrics.read_text()
    assert 'certman_certificate_expiry_timestamp_seconds{name="metric.example"}' in text
    assert 'certman_certificate_next_renewal_timestamp_seconds{name="metric.example"}' in text
    assert 'certman_certificate_last_success_timestamp_seconds{name="metric.example"}' in text
    assert 'certman_certificate_consecutive_failures{name="metric.example"} 0' in text
    assert stat.S_IMODE(metrics.stat().st_mode) == 0o644
    assert [p.name for p in metrics.parent.iterdir() if p.name.startswith(".certman.prom")] == []


def test_an_unknown_name_is_a_usage_error(renew_env: RenewEnv):
    config = write_config(renew_env)
    done = run(renew_env, config, "renew", "nosuch.example")
    assert done.returncode == 2
    assert done.stderr.startswith("certman: no certificate named 'nosuch.example'")


def test_issue_records_the_reload_command_and_runs_it(renew_env: RenewEnv):
    config = write_config(renew_env)
    log = renew_env.tmp_path / "reloaded"
    argv = [sys.executable, "-c", "import os, sys; open(sys.argv[1], 'w').write(os.environ['CERTMAN_NAME'])", str(log)]
    done = run(renew_env, config, "issue", "--reload-cmd", json.dumps(argv), "cmd.example")
    assert done.returncode == 0, done.stderr
    assert log.read_text() == "cmd.example"
    assert renew_env.keystore.read_spec("cmd.example").reloaders == ({"name": "command", "argv": argv},)


def test_issue_rejects_a_reload_command_that_is_not_a_json_list(renew_env: RenewEnv):
    config = write_config(renew_env)
    done = run(renew_env, config, "issue", "--reload-cmd", "systemctl reload nginx", "cmd.example")
    assert done.returncode == 2
    assert "is not a JSON list of strings" in done.stderr


def test_issue_with_a_failing_reload_command_exits_6_and_renew_retries_the_deploy(renew_env: RenewEnv):
    config = write_config(renew_env)
    marker = renew_env.tmp_path / "proxy-broken"
    marker.touch()
    argv = [sys.executable, "-c", "import os, sys; sys.exit(1 if os.path.exists(sys.argv[1]) else 0)", str(marker)]
    done = run(renew_env, config, "issue", "--reload-cmd", json.dumps(argv), "hook.example")
    assert done.returncode == 6
    assert done.stderr.startswith("certman: hook.example is stored, but not deployed")
    marker.unlink()
    done = run(renew_env, config, "renew", "--json")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["certificates"]
    assert result["action"] == "deployed"
    assert renew_env.keystore.versions("hook.example") == ["000001"]
