"""A large renew run splits its certificates over worker processes, and reads as one run.

The library tests lower ``PLANS_PER_PROCESS`` so that a handful of certificates makes two
processes (this one and one spawned worker) on this 2-core machine; the timer test renews
enough certificates for two at the real figure. The workers are real spawned interpreters.
"""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import services
import tomli_w
from fixtures.bind import ZONES, Bind
from fixtures.fault_proxy import FaultProxy
from fixtures.issuing import wait_until
from fixtures.renewal import RenewEnv

from certman.renewal import workers
from certman.renewal.job import renew

NAMES = [f"w{k}.workers.example" for k in range(4)]


# Spawned interpreters and a run of 64 certificates: longer than the fast tier affords.
pytestmark = pytest.mark.slow

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = {"PATH": "/usr/bin:/bin"}


@pytest.fixture
def two_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "PLANS_PER_PROCESS", 2)
    if workers.process_count(len(NAMES), 4) < 2:
        pytest.fail("these tests need two usable cores, as CI has")


def reload_recorder(tmp_path: Path) -> tuple[list[dict[str, object]], Path]:
    calls = tmp_path / "reloads"
    script = tmp_path / "reload.sh"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    script.chmod(0o700)
    return [{"name": "command", "argv": [str(script), "reloaded"]}], calls


def test_processes_are_used_only_for_runs_large_enough_to_pay_for_them():
    assert workers.process_count(100, 8, cores=2) == 2
    assert workers.process_count(3, 8, cores=2) == 1
    assert workers.process_count(100, 1, cores=2) == 1
    assert workers.process_count(100, 8, cores=1) == 1


@pytest.mark.usefixtures("two_processes")
def test_a_run_over_worker_processes_issues_every_certificate_and_reloads_once(
    renew_env: RenewEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    reloader, calls = reload_recorder(tmp_path)
    settings = renew_env.settings(certificates=tuple({"names": [n], "reloader": reloader} for n in NAMES))

    with caplog.at_level(logging.INFO):
        report = renew(renew_env.keystore, settings, jobs=4)

    assert [(r.name, r.action, r.error) for r in report.results] == [(n, "issued", None) for n in NAMES]
    for name in NAMES:
        assert renew_env.keystore.read_state(name).last_success is not None
    assert calls.read_text() == "reloaded\n"
    stored_by = {r.process for r in caplog.records if r.getMessage().startswith("stored ")}
    assert len(stored_by) == 2 and os.getpid() in stored_by


@pytest.mark.usefixtures("two_processes")
def test_a_worker_that_dies_fails_its_certificates_and_the_rest_are_issued(
    renew_env: RenewEnv, tmp_path: Path, bind: Bind
):
    # The DNS-01 hook of one certificate kills the process that runs it: the worker.
    killer = tmp_path / "kill-parent"
    killer.write_text("#!/bin/sh\nkill -KILL $PPID\n")
    killer.chmod(0o700)
    dies = {"name": "dns-01", "provider": "exec", "program": str(killer)}
    dies |= {"resolvers": [bind.address], "nameserver_port": bind.port}
    tables: list[dict[str, object]] = [{"names": [n]} for n in NAMES]
    # Round robin over the sorted names: the second one goes to the spawned worker.
    tables[1] = {"names": [f"w1.{ZONES[0]}"], "solver": [dies]}
    settings = renew_env.settings(certificates=tuple(tables))

    report = renew(renew_env.keystore, settings, jobs=4)

    results = {r.name: r for r in report.results}
    for name in [f"w1.{ZONES[0]}", NAMES[3]]:
        assert results[name].action == "failed"
        assert results[name].error == "the worker process renewing it was killed by signal 9"
    for name in NAMES[0::2]:
        assert (results[name].action, results[name].error) == ("issued", None)
    assert report.exit_code == 7


def test_the_timer_renews_a_run_large_enough_for_a_worker_process_through_one_challenge_port(
    pebble: services.Pebble, tmp_path: Path
):
    names = [f"t{k}.timer-workers.example" for k in range(2 * workers.PLANS_PER_PROCESS)]
    keystore = tmp_path / "ks"
    config = tmp_path / "certman.toml"
    settings = {"server": pebble.directory_url, "ca_bundle": str(pebble.ca_bundle), "agree_tos": True}
    # The standalone solver on Pebble's one HTTP-01 port: the worker answers through the rendezvous.
    settings |= {"keystore": str(keystore), "http_address": "127.0.0.1", "http_port": pebble.http_port}
    config.write_text(tomli_w.dumps({**settings, "certificate": [{"names": [n]} for n in names]}))
    timer = ["/usr/bin/env", "-i", "PATH=/usr/bin:/bin", CERTMAN, "--config", str(config)]
    issued = subprocess.run([*timer, "renew", "--jobs", "8"], cwd="/", capture_output=True, text=True, timeout=300)
    assert issued.returncode == 0, issued.stderr

    renewed = subprocess.run(
        [*timer, "renew", "--force", "--jobs", "8", "--json"], cwd="/", capture_output=True, text=True, timeout=300
    )

    assert renewed.returncode == 0, renewed.stderr
    assert renewed.stderr == ""
    results = json.loads(renewed.stdout)["certificates"]
    assert [(r["name"], r["action"]) for r in results] == [(n, "renewed") for n in sorted(names)]
    [log] = (keystore / "logs").iterdir()
    storing = re.findall(r"^\S+ \S+ UTC (\d+) INFO certman\.issuance\.issue: stored ", log.read_text(), re.M)
    assert len(storing) == 2 * len(names) and len(set(storing)) == 4  # two processes per run


@pytest.mark.usefixtures("two_processes")
def test_a_worker_that_cannot_start_leaves_its_certificates_to_this_process(
    renew_env: RenewEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    def cannot_start(self: object) -> None:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.get_context("spawn").Process, "start", cannot_start)
    settings = renew_env.settings(certificates=tuple({"names": [n]} for n in NAMES))

    with caplog.at_level(logging.INFO):
        report = renew(renew_env.keystore, settings, jobs=4)

    assert [(r.name, r.action, r.error) for r in report.results] == [(n, "issued", None) for n in NAMES]
    assert "cannot start a worker process (Resource temporarily unavailable)" in caplog.text
    assert {r.process for r in caplog.records if r.getMessage().startswith("stored ")} == {os.getpid()}


def test_sigterm_stops_a_run_over_a_worker_and_leaves_no_process_behind(
    fault_proxy: FaultProxy, pebble: services.Pebble, tmp_path: Path
):
    # This process's own threads finish their request in flight before it exits: a short stall.
    stall = fault_proxy.add(path=r"^/chalZ/", method="POST", stall=8.0)
    config = tmp_path / "certman.toml"
    settings = {"server": fault_proxy.directory_url, "ca_bundle": str(pebble.ca_bundle), "agree_tos": True}
    settings |= {"keystore": str(tmp_path / "ks"), "http_address": "127.0.0.1", "http_port": pebble.http_port}
    config.write_text(tomli_w.dumps({**settings, "certificate": [{"names": [n]} for n in NAMES]}))
    # Two processes for four certificates, as the library tests above set it.
    code = (
        "import sys\nimport certman.renewal.workers as workers\nworkers.PLANS_PER_PROCESS = 2\n"
        f"sys.argv = ['certman', '--config', {str(config)!r}, 'renew', '--jobs', '4']\n"
        "from certman.cli import main\nmain()\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", code], cwd="/", env=TIMER_ENV, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_until(lambda: stall.fired == len(NAMES), "every order waits for the CA to take its challenge answer")
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()

    assert run.returncode == 130
    assert stderr == "certman: interrupted\n"
    left = subprocess.run(["ps", "-o", "stat=", "-s", str(run.pid)], capture_output=True, text=True).stdout.split()
    assert [state for state in left if not state.startswith("Z")] == []
