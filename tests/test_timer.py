"""`certman timer`: systemd units or a cron line, written below a temporary root."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from certman.renewal import timer

CERTMAN = str(Path(sys.executable).parent / "certman")


def run(*args: str, keystore: Path | None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CERTMAN_CONFIG", "CERTMAN_KEYSTORE")}
    if keystore is not None:
        env["CERTMAN_KEYSTORE"] = str(keystore)
    return subprocess.run([CERTMAN, *args], env=env, capture_output=True, text=True, timeout=60, cwd=cwd)


def test_the_timer_runs_twice_a_day_spread_and_catching_up_missed_runs(tmp_path: Path):
    [_, timer_unit] = timer.planned(
        tmp_path, cron=False, keystore=Path("/var/lib/certman"), executable="/usr/bin/certman"
    )
    assert "OnCalendar=*-*-* 00,12:00:00" in timer_unit.content
    assert "RandomizedDelaySec=12h" in timer_unit.content
    assert "Persistent=true" in timer_unit.content


def test_the_service_runs_renew_hardened_and_writes_only_the_keystore(tmp_path: Path):
    [service, _] = timer.planned(
        tmp_path,
        cron=False,
        keystore=Path("/var/lib/certman"),
        config=Path("/etc/certman/certman.toml"),
        executable="/usr/bin/certman",
    )
    lines = service.content.splitlines()
    assert "ExecStart=/usr/bin/certman --config /etc/certman/certman.toml --keystore /var/lib/certman renew" in lines
    for setting in (
        "ProtectSystem=strict",
        "PrivateTmp=true",
        "NoNewPrivileges=true",
        "ReadWritePaths=/var/lib/certman",
        "Type=oneshot",
        # The timer finds nginx and haproxy in /usr/sbin, which cron-like PATHs lack.
        "Environment=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ):
        assert setting in lines


def test_the_cron_line_uses_a_random_minute_and_two_hours_twelve_apart(tmp_path: Path):
    [entry] = timer.planned(
        tmp_path, cron=True, keystore=Path("/ks"), executable="/usr/bin/certman", rng=random.Random(7)
    )
    line = entry.content.splitlines()[-1]
    minute, hours, *_ = line.split()
    first, second = map(int, hours.split(","))
    assert 0 <= int(minute) < 60 and second == first + 12
    assert line.endswith("root /usr/bin/certman --keystore /ks renew >/dev/null")
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in entry.content.splitlines()
    assert entry.path == tmp_path / "etc/cron.d/certman"


def test_install_writes_the_units_below_root_and_uninstall_removes_them(tmp_path: Path):
    done = run("timer", "install", "--root", str(tmp_path), keystore=tmp_path / "ks")
    assert done.returncode == 0, done.stderr
    units = tmp_path / "etc/systemd/system"
    assert sorted(p.name for p in units.iterdir()) == ["certman-renew.service", "certman-renew.timer"]
    assert f"--keystore {tmp_path / 'ks'} renew" in (units / "certman-renew.service").read_text()
    done = run("timer", "uninstall", "--root", str(tmp_path), keystore=tmp_path / "ks")
    assert done.returncode == 0, done.stderr
    assert list(units.iterdir()) == []


def test_cron_install_and_uninstall(tmp_path: Path):
    assert run("timer", "install", "--cron", "--root", str(tmp_path), keystore=tmp_path / "ks").returncode == 0
    assert (tmp_path / "etc/cron.d/certman").exists()
    done = run("timer", "uninstall", "--root", str(tmp_path), keystore=tmp_path / "ks")
    assert done.stdout.strip() == f"removed {tmp_path / 'etc/cron.d/certman'}"


def test_print_shows_the_units_and_writes_nothing(tmp_path: Path):
    done = run("timer", "install", "--print", "--root", str(tmp_path), keystore=tmp_path / "ks")
    assert done.returncode == 0, done.stderr
    assert "[Timer]" in done.stdout and "[Service]" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_relative_config_and_keystore_are_written_absolute_for_the_timer_that_runs_from_root(tmp_path: Path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/certman.toml").write_text('keystore = "../ks"\n')
    done = run("--config", "etc/certman.toml", "timer", "install", "--print", keystore=None, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # keystore in certman.toml is relative to the config file, as the timer reads it.
    assert f"--config {tmp_path / 'etc/certman.toml'} --keystore {tmp_path / 'ks'} renew" in done.stdout
    done = run("timer", "install", "--print", "--keystore", "ks2", keystore=None, cwd=tmp_path)
    assert f"--keystore {tmp_path / 'ks2'} renew" in done.stdout


def test_install_says_which_schedule_it_chose_and_how_to_switch_when_cron_is_there_too(tmp_path: Path):
    (tmp_path / "etc/cron.d").mkdir(parents=True)
    done = run("timer", "install", "--root", str(tmp_path), keystore=tmp_path / "ks")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "installed the systemd timer certman-renew.timer: `certman renew` twice a day; "
        "for cron instead (cron is here too), run `certman timer install --cron` (it removes the timer)"
    )


def test_switching_to_cron_removes_the_systemd_timer_so_renew_is_scheduled_once(tmp_path: Path):
    assert run("timer", "install", "--root", str(tmp_path), keystore=tmp_path / "ks").returncode == 0
    done = run("timer", "install", "--cron", "--root", str(tmp_path), keystore=tmp_path / "ks")
    assert done.returncode == 0, done.stderr
    units = tmp_path / "etc/systemd/system"
    assert list(units.iterdir()) == [] and (tmp_path / "etc/cron.d/certman").exists()
    assert f"removed {units / 'certman-renew.timer'} (renew runs from one schedule only)" in done.stdout
    assert done.stdout.splitlines()[-1].startswith(f"installed the cron job {tmp_path / 'etc/cron.d/certman'}")
    assert "run `certman timer install` (it removes the cron job)" in done.stdout


def test_switching_back_to_systemd_removes_the_cron_job(tmp_path: Path):
    assert run("timer", "install", "--cron", "--root", str(tmp_path), keystore=tmp_path / "ks").returncode == 0
    done = run("timer", "install", "--root", str(tmp_path), keystore=tmp_path / "ks")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "etc/cron.d/certman").exists()
    assert f"removed {tmp_path / 'etc/cron.d/certman'} (renew runs from one schedule only)" in done.stdout
