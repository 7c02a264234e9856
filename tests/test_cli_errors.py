"""Every documented exit code, through the CLI: one line, a hint, no traceback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import services
from fixtures.cli import CertmanRun, holding_cert_lock, issue_flags
from fixtures.snapshot import snapshot


def stderr_lines(result) -> list[str]:
    return result.stderr.strip().splitlines()


def assert_one_line_error(result, code: int, *needles: str) -> None:
    assert result.exit_code == code, result.output
    lines = stderr_lines(result)
    assert lines[0].startswith("certman: ")
    assert all(line.startswith(("certman: ", "hint: ")) for line in lines), lines
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_success_exits_0(certman: CertmanRun, pebble: services.Pebble) -> None:
    assert certman("issue", *issue_flags(pebble), "ok.example").exit_code == 0


def test_invalid_identifier_exits_2_before_any_request(certman: CertmanRun) -> None:
    # The server would be unreachable (exit 4) if certman tried to talk to it.
    result = certman("issue", "--server", f"https://127.0.0.1:{closed_port()}/dir", "bad_name.example")
    assert_one_line_error(result, 2, "invalid identifier 'bad_name.example'")
    assert not certman.keystore.exists()


def test_wildcard_over_http01_exits_2_naming_dns01(certman: CertmanRun) -> None:
    result = certman("issue", "--server", f"https://127.0.0.1:{closed_port()}/dir", "*.example.com")
    assert_one_line_error(result, 2, "DNS-01")


def test_unknown_option_exits_2_with_one_line(certman: CertmanRun) -> None:
    assert_one_line_error(certman("issue", "--no-such-flag", "a.example"), 2, "--no-such-flag")


def test_plain_http_server_url_exits_2(certman: CertmanRun) -> None:
    assert_one_line_error(certman("issue", "--server", "http://ca.example/dir", "a.example"), 2, "https://")


def test_registration_without_agreeing_exits_2_naming_agree_tos(certman: CertmanRun, pebble: services.Pebble) -> None:
    flags = [f for f in issue_flags(pebble) if f != "--agree-tos"]
    result = certman("issue", *flags, "terms.example")
    assert_one_line_error(result, 2, "terms", "--agree-tos")


def test_bad_config_file_exits_2_naming_the_key(certman: CertmanRun, tmp_path: Path) -> None:
    config = tmp_path / "certman.toml"
    config.write_text('sever = "typo"\n')
    assert_one_line_error(certman("--config", str(config), "list"), 2, str(config), "'sever'")


def test_world_writable_keystore_exits_3_naming_the_path(certman: CertmanRun) -> None:
    certman.keystore.mkdir()
    certman.keystore.chmod(0o777)
    assert_one_line_error(certman("list"), 3, str(certman.keystore), "chmod 700")


def test_locked_certificate_exits_3(certman: CertmanRun, pebble: services.Pebble) -> None:
    with holding_cert_lock(certman.keystore, "locked.example"):
        result = certman("issue", *issue_flags(pebble), "locked.example", env={"CERTMAN_LOCK_TIMEOUT": "0.2"})
    assert_one_line_error(result, 3, "locked by another certman run")


def test_unreachable_ca_exits_4(certman: CertmanRun) -> None:
    result = certman(
        "issue",
        "--server",
        f"https://127.0.0.1:{closed_port()}/dir",
        "--agree-tos",
        "a.example",
        env={"CERTMAN_TIMEOUT": "3"},
    )
    assert_one_line_error(result, 4, "cannot reach the ACME server", "connection refused")


def test_untrusted_ca_tls_exits_4_naming_ca_bundle(certman: CertmanRun, pebble: services.Pebble) -> None:
    result = certman("issue", "--server", pebble.directory_url, "--agree-tos", "a.example")
    assert_one_line_error(result, 4, "TLS verification", "--ca-bundle")


def test_port_in_use_exits_5_and_keeps_the_keystore(certman: CertmanRun, pebble: services.Pebble) -> None:
    assert certman("issue", *issue_flags(pebble), "busy.example").exit_code == 0
    before = snapshot(certman.keystore)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", pebble.http_port))
        squatter.listen()
        result = certman("issue", *issue_flags(pebble), "busy.example")
    assert_one_line_error(result, 5, "already in use", "--http-port")
    assert snapshot(certman.keystore) == before


def test_missing_webroot_exits_5(certman: CertmanRun, pebble: services.Pebble, tmp_path: Path) -> None:
    result = certman(
        "issue", *issue_flags(pebble), "--solver", "webroot", "--webroot", str(tmp_path / "nowhere"), "webroot.example"
    )
    assert_one_line_error(result, 5, "webroot", "does not exist")


def test_sigterm_exits_130_and_releases_everything(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path
) -> None:
    env = {**os.environ, "CERTMAN_KEYSTORE": str(certman.keystore), "CERTMAN_LOCK_TIMEOUT": "60"}
    with holding_cert_lock(certman.keystore, "term.example") as lock:
        proc = subprocess.Popen(
            [sys.executable, "-m", "certman", "issue", *issue_flags(pebble), "term.example"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        # It waits for our lock; once it has opened the lock file, stop it.
        services.wait_for(lambda: _has_open(proc.pid, lock), timeout=10)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert stderr.strip() == "certman: interrupted"


def _has_open(pid: int, path: Path) -> bool:
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir())
    except OSError:
        return False


@pytest.mark.parametrize("command", ["issue --help", "list --help", "--help", "--version"])
def test_help_and_version_exit_0(certman: CertmanRun, command: str) -> None:
    assert certman(*command.split()).exit_code == 0


def test_a_bug_exits_70_without_a_traceback(certman: CertmanRun, pebble: services.Pebble, tmp_path: Path) -> None:
    # A third-party solver, registered through the entry-point group, that crashes.
    site = tmp_path / "site"
    dist_info = site / "brokenplugin-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[certman.solvers]\nbroken = brokenplugin:BrokenSolver\n")
    (site / "brokenplugin.py").write_text(
        "class BrokenSolver:\n"
        "    challenge_type = 'http-01'\n"
        "    @classmethod\n"
        "    def from_options(cls, options):\n"
        "        return cls()\n"
        "    def present(self, batch):\n"
        "        raise RuntimeError('plugin bug')\n"
        "    def wait_ready(self, batch):\n"
        "        pass\n"
        "    def cleanup(self, batch):\n"
        "        pass\n"
    )
    env = {**os.environ, "CERTMAN_KEYSTORE": str(certman.keystore), "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-m", "certman", "issue", *issue_flags(pebble), "--solver", "broken", "bug.example"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 70
    assert proc.stderr.splitlines() == [
        "certman: internal error (please report): RuntimeError",
        "hint: run again with -vv to see the details",
    ]


def test_output_that_cannot_be_written_is_one_error_and_the_certificate_is_still_issued(
    certman: CertmanRun, pebble: services.Pebble
) -> None:
    env = {**os.environ, "CERTMAN_KEYSTORE": str(certman.keystore)}
    with open("/dev/full", "w") as full:  # every write: ENOSPC
        done = subprocess.run(
            [sys.executable, "-m", "certman", "issue", *issue_flags(pebble), "full.example"],
            env=env,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )

    assert done.returncode == 0
    assert done.stderr == (
        "certman: cannot write the output: No space left on device\n"
        "hint: the command's work went on and its exit code says how it went; "
        "`certman list` shows the certificates\n"
    )
    assert (certman.keystore / "live" / "full.example" / "fullchain.pem").is_file()
