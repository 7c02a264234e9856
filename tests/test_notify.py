"""Notifications through apprise: a test message, once per problem and once on recovery,
URLs only from a 0600 file or the environment, redacted everywhere, doctor's view."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fixtures.notify import Mailbox, Webhook
from fixtures.renewal import RenewEnv
from test_renew_cli import write_config

CERTMAN = str(Path(sys.executable).parent / "certman")
TOKEN = "s3cr3t-hook-token"


def run(*args: str, keystore: Path, config: Path | str = "/dev/null", **env: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": "/usr/bin:/bin", "CERTMAN_KEYSTORE": str(keystore), "CERTMAN_CONFIG": str(config), **env}
    return subprocess.run([CERTMAN, *args], capture_output=True, text=True, timeout=120, env=environ, cwd="/")


def notify_file(tmp_path: Path, *urls: str, mode: int = 0o600) -> Path:
    path = tmp_path / "notify.urls"
    path.write_text("# apprise URLs\n" + "\n".join(urls) + "\n")
    path.chmod(mode)
    return path


def test_notify_test_reaches_a_webhook_and_a_mailbox_and_shows_no_token(
    tmp_path: Path, webhook: Webhook, smtp_server: Mailbox
) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(f'notify_file = "{notify_file(tmp_path, webhook.url(), smtp_server.url())}"\n')
    done = run("notify", "--test", keystore=tmp_path / "ks", config=config)
    assert done.returncode == 0, done.stderr
    assert [m["title"] for m in webhook.received.messages] == [f"certman on {os.uname().nodename}: test"]
    assert webhook.received.paths == [f"/hooks/{TOKEN}"]
    assert len(smtp_server.envelopes) == 1 and smtp_server.envelopes[0].rcpt_tos == ["ops@example.com"]
    assert TOKEN not in done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == f"sent to json://127.0.0.1:{webhook.port}/hooks/[redacted]"


def test_urls_from_a_file_others_can_read_are_refused(tmp_path: Path, webhook: Webhook) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(f'notify_file = "{notify_file(tmp_path, webhook.url(), mode=0o640)}"\n')
    done = run("notify", "--test", keystore=tmp_path / "ks", config=config)
    assert done.returncode == 2
    assert "readable by others" in done.stderr and "hint: chmod 600" in done.stderr
    assert webhook.received.messages == []


def test_urls_never_inline_in_certman_toml(tmp_path: Path) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(f'notify_urls = ["json://127.0.0.1/hooks/{TOKEN}"]\n')
    done = run("notify", "--test", keystore=tmp_path / "ks", config=config)
    assert done.returncode == 2 and "unknown setting 'notify_urls'" in done.stderr


def test_renew_notifies_once_per_problem_and_once_on_recovery(renew_env: RenewEnv, webhook: Webhook) -> None:
    broken = {"names": ["flaky.example"], "solver": [{"name": "webroot", "path": "/nonexistent"}]}
    config = write_config(renew_env, broken)
    env = {"CERTMAN_NOTIFY_URLS": webhook.url(), "CERTMAN_SOLVER": "webroot", "CERTMAN_WEBROOT": str(renew_env.webroot)}
    keystore = Path(renew_env.keystore.root)
    first = run("renew", keystore=keystore, config=config, **env)
    assert first.returncode == 7
    assert [m["type"] for m in webhook.received.messages] == ["failure"]
    assert "PROBLEM flaky.example: renewal failed" in webhook.received.messages[0]["message"]
    # The timer's next runs: still failing (backing off, then again), nothing new to say.
    run("renew", keystore=keystore, config=config, **env)
    run("renew", "--force", keystore=keystore, config=config, **env)
    assert len(webhook.received.messages) == 1
    config = write_config(renew_env, {"names": ["flaky.example"]})
    fixed = run("renew", "--force", keystore=keystore, config=config, **env)
    assert fixed.returncode == 0, fixed.stderr
    assert [m["type"] for m in webhook.received.messages] == ["failure", "success"]
    assert "RECOVERED flaky.example" in webhook.received.messages[1]["message"]
    assert TOKEN not in (keystore / "logs").joinpath(os.listdir(keystore / "logs")[0]).read_text()


def test_doctor_reports_a_failed_delivery_redacted(renew_env: RenewEnv, tmp_path: Path) -> None:
    # Nothing listens there: the delivery fails and the next doctor says so.
    dead = f"json://127.0.0.1:1/hooks/{TOKEN}"
    broken = {"names": ["undelivered.example"], "solver": [{"name": "webroot", "path": "/nonexistent"}]}
    config = write_config(renew_env, broken)
    keystore = Path(renew_env.keystore.root)
    assert run("renew", keystore=keystore, config=config, CERTMAN_NOTIFY_URLS=dead).returncode == 7
    doctor = run(
        "doctor", "--server", "https://127.0.0.1:1/dir", keystore=keystore, config=config, CERTMAN_NOTIFY_URLS=dead
    )
    lines = [line for line in doctor.stdout.splitlines() if "notify" in line]
    assert lines[0].startswith("ok    notify: json://127.0.0.1:1/hooks/")
    assert lines[1].startswith("FAIL  notify delivery: the last notification, at ")
    assert TOKEN not in doctor.stdout + doctor.stderr
