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

    --user    the same pair as systemd user units in ~/.config/systemd/user (for an
              operator without root, whose keystore is their own), enabled with
              ``systemctl --user``; they run while the user's manager runs, so
              ``loginctl enable-linger`` keeps them going after logout.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import msgspec

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


def user_unit_dir(env: dict[str, str] | None = None) -> Path:
    """Where systemd looks for a user's own units: $XDG_CONFIG_HOME/systemd/user."""
    env = dict(os.environ) if env is None else env
    config_home = Path(env.get("XDG_CONFIG_HOME") or Path(env.get("HOME") or Path.home()) / ".config")
    return config_home.absolute() / "systemd" / "user"


def user_units(root: Path, *, executable: str, keystore: Path, config: Path | None = None) -> list[UnitFile]:
    """The timer and service as user units (below ``root``); no system-wide sandboxing,
    which a user manager cannot set up without user namespaces."""
    directory = root / user_unit_dir().relative_to("/")
    service = f"""\
[Unit]
Description=Renew ACME certificates with certman

[Service]
Type=oneshot
Environment=PATH={TIMER_PATH}
ExecStart={_exec_line(executable, keystore, config)}
# Exit status 7 means some certificates failed: the unit fails, so monitoring sees it.
UMask=0077
NoNewPrivileges=true
"""
    [_, timer] = systemd_units(root, executable=executable, keystore=keystore, config=config)
    return [UnitFile(directory / SERVICE, service), UnitFile(directory / TIMER, timer.content)]


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
    user: bool = False,
    config: Path | None = None,
    executable: str | None = None,
    rng: random.Random | None = None,
) -> list[UnitFile]:
    """The files ``install`` would write (``certman timer install --print``)."""
    executable = executable or certman_executable()
    if user:
        return user_units(root, executable=executable, keystore=keystore, config=config)
    if cron:
        return cron_entry(root, executable=executable, keystore=keystore, config=config, rng=rng)
    return systemd_units(root, executable=executable, keystore=keystore, config=config)


class Installed(msgspec.Struct, frozen=True):
    """What ``install`` did: the files it wrote (planned, for a dry run), the other kind of
    schedule it removed so that renew runs once, and a sentence saying which kind is
    installed and how to switch."""

    files: tuple[UnitFile, ...]
    removed: tuple[Path, ...] = ()
    note: str = ""


def install(
    root: Path,
    *,
    cron: bool,
    keystore: Path,
    config: Path | None = None,
    dry_run: bool = False,
    systemctl: bool | None = None,
    user: bool = False,
) -> Installed:
    """What `certman timer install` does: write the ``planned`` files below ``root`` (mode
    0644, each by an atomic rename) and enable the timer.

    A system timer replaces an installed cron file and the other way round (disabled and
    removed first), so renew is never scheduled twice. ``dry_run`` writes and removes
    nothing (``--print``). ``systemctl`` (default: only when ``root`` is ``/``) runs
    ``daemon-reload`` and ``enable --now`` (``--user`` ones for ``user`` units); raises
    ``UsageError`` without systemd, or for system units without root (before writing
    anything), ``CertmanError`` when systemctl fails.
    """
    if user and cron:
        raise UsageError("--user and --cron do not go together", "for a user crontab, run `crontab -e` yourself")
    files = planned(root, cron=cron, keystore=keystore, config=config, user=user)
    if dry_run:
        return Installed(tuple(files))
    for unit in files:
        _write(unit, user=user)
    removed: list[Path] = []
    if not user:
        removed = _remove_systemd(root, systemctl) if cron else _remove_cron(root)
    if _systemctl_wanted(root, systemctl) and any(u.path.name == TIMER for u in files):
        scope = ("--user",) if user else ()
        _systemctl(*scope, "daemon-reload")
        _systemctl(*scope, "enable", "--now", TIMER)
    return Installed(tuple(files), tuple(removed), _note(root, cron=cron, user=user))


def _note(root: Path, *, cron: bool, user: bool) -> str:
    if user:
        return (
            f"installed the systemd user timer {TIMER}: `certman renew` twice a day while your systemd runs "
            "(`loginctl enable-linger` keeps it after logout)"
        )
    if cron:
        return (
            f"installed the cron job {root / CRON_FILE}: `certman renew` twice a day; "
            "for a systemd timer instead, run `certman timer install` (it removes the cron job)"
        )
    here = " (cron is here too)" if (root / "etc/cron.d").is_dir() else ""
    return (
        f"installed the systemd timer {TIMER}: `certman renew` twice a day; for cron instead{here}, "
        "run `certman timer install --cron` (it removes the timer)"
    )


def _remove_cron(root: Path) -> list[Path]:
    path = root / CRON_FILE
    try:
        path.unlink()
    except FileNotFoundError:
        return []
    return [path]


def _remove_systemd(root: Path, systemctl: bool | None) -> list[Path]:
    units = root / SYSTEMD_DIR
    present = [p for p in (units / TIMER, units / SERVICE) if p.exists()]
    wanted = _systemctl_wanted(root, systemctl)
    if wanted and (units / TIMER).exists():
        _systemctl("disable", "--now", TIMER)
    for path in present:
        path.unlink()
    if wanted and present:
        _systemctl("daemon-reload")
    return present


def _write(unit: UnitFile, *, user: bool) -> None:
    try:
        unit.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = unit.path.with_name(f".{unit.path.name}.tmp")
        tmp.write_text(unit.content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, unit.path)
    except PermissionError:
        # Only root may write /etc/systemd/system; a user has units of their own.
        needs_root = " (system units need root)" if not user and os.geteuid() != 0 else ""
        raise UsageError(
            f"cannot write {unit.path}: permission denied{needs_root}",
            "run it as root (sudo certman timer install), or `certman timer install --user` for units "
            "of your own in ~/.config/systemd/user",
        ) from None


def _systemctl_wanted(root: Path, systemctl: bool | None) -> bool:
    return root == Path("/") if systemctl is None else systemctl


def uninstall(root: Path, *, systemctl: bool | None = None, user: bool = False) -> list[Path]:
    """Remove whichever of the timer, service and cron file are installed (the user
    units for ``user``); return them.

    ``systemctl`` (default: only when ``root`` is ``/``) disables the timer first.
    """
    systemctl = _systemctl_wanted(root, systemctl)
    units = root / user_unit_dir().relative_to("/") if user else root / SYSTEMD_DIR
    scope = ("--user",) if user else ()
    paths = [units / TIMER, units / SERVICE, *(() if user else (root / CRON_FILE,))]
    present = [p for p in paths if p.exists()]
    if systemctl and (units / TIMER).exists():
        _systemctl(*scope, "disable", "--now", TIMER)
    for path in present:
        path.unlink()
    if systemctl and any(p.parent == units for p in present):
        _systemctl(*scope, "daemon-reload")
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
