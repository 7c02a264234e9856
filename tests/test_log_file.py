"""The run log: <keystore>/logs/ by default, log_file to move it, one file per UTC day,
whole lines from several processes at once, retention, redaction, and doctor says where."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import services
from fixtures.cli import issue_flags

CERTMAN = str(Path(sys.executable).parent / "certman")
LINES_PER_WRITER = 400
WRITERS = 4
WRITER = """
import logging, sys
from pathlib import Path
from certman.log_file import attach
attach(Path(sys.argv[1]), Path(sys.argv[1]).parent.parent)
log = logging.getLogger("writer")
for n in range(int(sys.argv[3])):
    log.debug("writer %s line %05d " + "x" * 300, sys.argv[2], n)
log.error("writer %s traceback follows", sys.argv[2], exc_info=ValueError("two\\nlines"))
"""


def run(*args: str, keystore: Path, config: Path | None = None, cwd: str = "/") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "CERTMAN_KEYSTORE": str(keystore), "CERTMAN_CONFIG": str(config or "/dev/null")}
    return subprocess.run([CERTMAN, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def today() -> str:
    return datetime.datetime.now(datetime.UTC).date().isoformat()


def test_an_issue_run_is_logged_in_the_keystore_at_debug_level_in_utc(pebble: services.Pebble, tmp_path: Path) -> None:
    keystore = tmp_path / "keystore"
    hmac = tmp_path / "hmac"
    hmac.write_text("c2VjcmV0LWhtYWMta2V5LXRoYXQtbXVzdC1uZXZlci1zaG93\n")
    done = run("issue", *issue_flags(pebble), "logged.example", keystore=keystore)
    assert done.returncode == 0, done.stderr
    log = keystore / "logs" / f"certman-{today()}.log"
    assert log.stat().st_mode & 0o777 == 0o600
    assert (keystore / "logs").stat().st_mode & 0o777 == 0o700
    text = log.read_text()
    assert " UTC " in text.splitlines()[0] and "certman issue" in text.splitlines()[0]
    assert " DEBUG " in text and "stored logged.example version" in text
    assert text.splitlines()[-1].endswith("exit 0")
    assert "PRIVATE KEY" not in text
    # Commands that only read leave it alone.
    size = log.stat().st_size
    assert run("list", keystore=keystore).returncode == 0
    assert log.stat().st_size == size


def test_a_failed_run_logs_its_error_and_hint(tmp_path: Path) -> None:
    keystore = tmp_path / "keystore"
    done = run(
        "issue", "--server", "https://127.0.0.1:1/dir", "--agree-tos", "--timeout", "1", "a.example", keystore=keystore
    )
    assert done.returncode == 4
    last = (keystore / "logs" / f"certman-{today()}.log").read_text().splitlines()[-1]
    assert "exit 4: cannot reach the ACME server" in last and "(hint: " in last


def test_log_file_moves_it_and_an_empty_one_turns_it_off(tmp_path: Path) -> None:
    keystore = tmp_path / "keystore"
    config = tmp_path / "certman.toml"
    # A closed loopback CA: doctor's CA line fails at once, and nothing leaves the host.
    closed = 'server = "https://127.0.0.1:1/dir"\n'
    config.write_text(closed + 'log_file = "var/log/certman.log"\nlog_retention_days = 7\n')
    run("remove", "absent.example", keystore=keystore, config=config)
    assert (tmp_path / "var" / "log" / f"certman-{today()}.log").exists()  # relative to certman.toml
    doctor = run("doctor", keystore=keystore, config=config)
    assert f"ok    log: {tmp_path}/var/log/certman-YYYY-MM-DD.log (UTC days, kept 7 days)" in doctor.stdout
    config.write_text(closed + 'log_file = ""\n')
    run("remove", "absent.example", keystore=tmp_path / "other", config=config)
    assert not (tmp_path / "other" / "logs").exists()
    assert 'ok    log: off (log_file = "")' in run("doctor", keystore=keystore, config=config).stdout


def test_old_days_are_pruned_past_the_retention(tmp_path: Path) -> None:
    keystore = tmp_path / "keystore"
    logs = keystore / "logs"
    logs.mkdir(parents=True, mode=0o700)
    keystore.chmod(0o700)
    day = datetime.datetime.now(datetime.UTC).date()
    old, kept = (
        logs / f"certman-{day - datetime.timedelta(days=31)}.log",
        logs / f"certman-{day - datetime.timedelta(days=30)}.log",
    )
    other = logs / "notes.txt"
    for path in (old, kept, other):
        path.write_text("x\n")
    run("remove", "absent.example", keystore=keystore)
    assert not old.exists() and kept.exists() and other.exists()


def test_several_processes_append_whole_lines(tmp_path: Path) -> None:
    base = tmp_path / "logs" / "certman.log"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(base), str(n), str(LINES_PER_WRITER)])
        for n in range(WRITERS)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0] * WRITERS
    lines = (tmp_path / "logs" / f"certman-{today()}.log").read_text().splitlines()
    records = [line for line in lines if " UTC " in line]
    for n in range(WRITERS):
        mine = [line for line in records if f"writer {n} line " in line]
        assert [int(line.split(" line ")[1][:5]) for line in mine] == list(range(LINES_PER_WRITER))
        assert all(line.endswith("x" * 300) for line in mine)
    # A traceback is one record: its lines follow their own header.
    for n, line in enumerate(lines):
        if line.endswith("traceback follows"):
            assert lines[n + 1] == "ValueError: two" and lines[n + 2] == "lines"
