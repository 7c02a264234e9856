"""Install the renewal job: a systemd service and timer, or a cron line.

    systemd   certman-renew.timer fires twice a day with RandomizedDelaySec (so a fleet
              does not hit the CA at the same second) and Persistent=true (a run missed
              while the host was off happens at boot); certman-renew.service runs
              ``certman renew`` as a hardened oneshot.
    cron      /etc/cron.d/certman at a random minute of two random hours 12 h apart.

Both set PATH to ``certman.paths.TIMER_PATH``, which holds /usr/sbin and /sbin: cron
and some service managers leave them out, and that is where nginx and haproxy live.

Everything is written below ``root`` (``/`` in production, a temporary directory in
tests); systemctl runs only when asked to (by default only for ``root == /``).
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import children
from ..errors import CertmanError, UsageError
from ..paths import TIMER_PATH

SYSTEMD_DIR = Path("etc/systemd/system")
SERVICE = "certman-renew.service"
TIMER = "certman-renew.timer"
CRON_FILE = Path("etc/cron.d/certman")


@dataclass(frozen=True)
class UnitFile:
    path: Path
    content: str


def certman_executable() -> str:
    found = shutil.which("certman")
    return found or str(Path(sys.argv[0]).absolute())


def _exec_line(executable: str, keystore: Path | None, config: Path | None) -> str:
    argv = [executable]
    if config is not None:
        argv += ["--config", str(config)]
    if keystore is not None:
        argv += ["--keystore", str(keystore)]
    return shlex.join(argv + ["renew"])


def systemd_units(root: Path, *, executable: str, keystore: Path, config: Path | None = None) -> list[UnitFile]:
    service = f"""\
[Unit]
Description=Renew ACME certificates with certman
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
Environment=PATH={TIMER_PATH}
ExecStart={_exec_line(executable, keystore, config)}
# Exit status 7 means some certificates failed: the unit fails, so monitoring sees it.
# Hardening: certman writes only its keystore; reload hooks that write elsewhere
# (webroots, proxy state) need a drop-in with ReadWritePaths=.
UMask=0077
ProtectSystem=strict
ReadWritePaths={keystore}
PrivateTmp=true
ProtectHome=read-only
NoNewPrivileges=true
PrivateDevices=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectKernelLogs=true
ProtectControlGroups=true
ProtectClock=true
RestrictSUIDSGID=true
RestrictRealtime=true
RestrictNamespaces=true
LockPersonality=true
SystemCallArchitectures=native
"""
    timer = """\
[Unit]
Description=Run certman renew twice a day

[Timer]
OnCalendar=*-*-* 00,12:00:00
RandomizedDelaySec=12h
Persistent=true

[Install]
WantedBy=timers.target
"""
    return [UnitFile(root / SYSTEMD_DIR / SERVICE, service), UnitFile(root / SYSTEMD_DIR / TIMER, timer)]


def cron_entry(
    root: Path, *, executable: str, keystore: Path, config: Path | None = None, rng: random.Random | None = None
) -> list[UnitFile]:
    rng = rng or random.SystemRandom()
    minute, hour = rng.randrange(60), rng.randrange(12)
    # Standard output is the summary; failures also go to stderr, which cron mails.
    line = f"{minute} {hour},{hour + 12} * * * root {_exec_line(executable, keystore, config)} >/dev/null\n"
    header = f"# certman: renew certificates twice a day\nPATH={TIMER_PATH}\n"
    return [UnitFile(root / CRON_FILE, header + line)]


def planned(
    root: Path,
    *,
    cron: bool,
    keystore: Path,
    config: Path | None = None,
    executable: str | None = None,
    rng: random.Random | None = None,
) -> list[UnitFile]:
    """The files ``install`` would write (``certman timer install --print``)."""
    executable = executable or certman_executable()
    if cron:
        return cron_entry(root, executable=executable, keystore=keystore, config=config, rng=rng)
    return systemd_units(root, executable=executable, keystore=keystore, config=config)


def install(
    root: Path,
    *,
    cron: bool,
    keystore: Path,
    config: Path | None = None,
    dry_run: bool = False,
    systemctl: bool | None = None,
) -> list[UnitFile]:
    """What `certman timer install` does: write the ``planned`` files below ``root`` (mode
    0644, each by an atomic rename) and enable the timer; return the files.

    ``dry_run`` writes nothing (``--print``). ``systemctl`` (default: only when ``root``
    is ``/``) runs ``daemon-reload`` and ``enable --now``; raises ``UsageError`` without
    systemd, ``CertmanError`` when systemctl fails.
    """
    files = planned(root, cron=cron, keystore=keystore, config=config)
    if dry_run:
        return files
    for unit in files:
        unit.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = unit.path.with_name(f".{unit.path.name}.tmp")
        tmp.write_text(unit.content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, unit.path)
    if _systemctl_wanted(root, systemctl) and any(u.path.name == TIMER for u in files):
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", TIMER)
    return files


def _systemctl_wanted(root: Path, systemctl: bool | None) -> bool:
    return root == Path("/") if systemctl is None else systemctl


def uninstall(root: Path, *, systemctl: bool | None = None) -> list[Path]:
    """Remove whichever of the timer, service and cron file are installed; return them.

    ``systemctl`` (default: only when ``root`` is ``/``) disables the timer first.
    """
    systemctl = _systemctl_wanted(root, systemctl)
    paths = [root / SYSTEMD_DIR / TIMER, root / SYSTEMD_DIR / SERVICE, root / CRON_FILE]
    present = [p for p in paths if p.exists()]
    if systemctl and (root / SYSTEMD_DIR / TIMER).exists():
        _systemctl("disable", "--now", TIMER)
    for path in present:
        path.unlink()
    if systemctl and any(p.parent == root / SYSTEMD_DIR for p in present):
        _systemctl("daemon-reload")
    return present


def _systemctl(*args: str) -> None:
    try:
        done = children.run(["systemctl", *args], env=None, timeout=60)
    except FileNotFoundError:
        raise UsageError(
            "systemctl not found: this host does not run systemd", "use `certman timer install --cron`"
        ) from None
    except children.ChildTimedOut:
        raise CertmanError(f"systemctl {' '.join(args)} did not finish within 60 s") from None
    if done.returncode != 0:
        raise CertmanError(
            f"systemctl {' '.join(args)} failed", done.stderr.decode(errors="replace").strip()[-300:] or None
        )
