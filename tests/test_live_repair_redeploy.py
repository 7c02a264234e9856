"""A live/<name> put back by renew is deployed again, so the proxy reloads onto the restored files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import services

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = ("/usr/bin/env", "-i", "PATH=/usr/bin:/bin")
RELOAD_SCRIPT = '#!/bin/sh\necho "$CERTMAN_NAME" >> "$(dirname "$0")/reloads.log"\n'


def test_renew_from_the_timer_reloads_the_proxy_after_putting_back_live(tmp_path: Path, pebble: services.Pebble):
    keystore = tmp_path / "ks"
    script = tmp_path / "reload.sh"
    script.write_text(RELOAD_SCRIPT)
    script.chmod(0o755)
    name = "restored.example"
    issued = subprocess.run(
        [
            CERTMAN, "--keystore", str(keystore), "issue", name, "--server", pebble.directory_url,
            "--ca-bundle", str(pebble.ca_bundle), "--agree-tos", "--http-address", "127.0.0.1",
            "--http-port", str(pebble.http_port), "--reload-cmd", json.dumps([str(script)]),
        ],
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    # A backup restored with cp -rL: a real directory where the link was.
    live = keystore / "live" / name
    copy = tmp_path / "backup"
    shutil.copytree(live, copy)
    live.unlink()
    shutil.copytree(copy, live)

    done = subprocess.run(
        [*TIMER_ENV, CERTMAN, "--keystore", str(keystore), "renew", "--json"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [r["name"] for r in report["repaired"]] == [name]
    assert [(c["name"], c["action"]) for c in report["certificates"]] == [(name, "deployed")]
    assert live.is_symlink()
    assert (tmp_path / "reloads.log").read_text().split() == [name, name]
    state = json.loads((keystore / "certs" / name / "state.json").read_text())
    assert state["deploy"]["pending"] is False and state["deploy"]["error"] is None
