"""Paths and programs that mean the same from any directory and under any PATH.

A renewal runs from a timer: working directory ``/``, ``PATH=/usr/bin:/bin``, none
of the operator's shell variables. Whatever certman records for it is therefore
absolute: a relative path is resolved when it is recorded (against the directory of
the config file that holds it, or the current directory for a flag), and a bare
program name is resolved through PATH and the system directories, which is also
where a program is looked up when it runs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from .errors import UsageError

# Where system administration programs live (nginx and haproxy are in /usr/sbin on
# Debian); cron and some service managers leave the sbin directories out of PATH.
SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# The PATH the renewal timer (systemd unit and cron file) sets.
TIMER_PATH = ":".join(SYSTEM_DIRS)

# The variables through which requests (and OpenSSL) take the trusted CAs, in the
# order requests reads them; SSL_CERT_FILE is OpenSSL's.
TRUST_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def default_keystore(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if os.geteuid() == 0:
        return Path("/var/lib/certman")
    data_home = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "certman"


def default_config_path() -> Path:
    if os.geteuid() == 0:
        return Path("/etc/certman/certman.toml")
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "certman" / "certman.toml"


def absolute(value: str | os.PathLike[str], base: Path | None = None) -> str:
    """``value`` (``~`` expanded) as an absolute, normalised path; relative to ``base`` (default: the cwd).

    Symbolic links are kept: ``/etc/ssl/certs/ca.pem`` stays what the operator named.
    """
    path = Path(value).expanduser()
    if not path.is_absolute():
        # A relative base (``--config certman.toml``) is itself relative to the cwd.
        path = (base if base is not None else Path()).absolute() / path
    return os.path.normpath(path)


def search_path(env: Mapping[str, str] | None = None) -> str:
    """``env``'s PATH followed by the system directories it lacks."""
    env = os.environ if env is None else env
    given = [d for d in env.get("PATH", "").split(os.pathsep) if d]
    return os.pathsep.join(given + [d for d in SYSTEM_DIRS if d not in given])


def find_program(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The absolute path of executable ``name``, searched in ``search_path(env)``; None if none."""
    found = shutil.which(name, path=search_path(env))
    return absolute(found) if found else None


def program_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with PATH extended by the system directories, for a program certman starts:
    a reload script that calls ``nginx`` works from cron as it does by hand."""
    return {**env, "PATH": search_path(env)}


def record_program(name: str, origin: str, base: Path | None = None) -> str:
    """argv[0] as recorded: a name with a slash made absolute, a bare name resolved now.

    Raises ``UsageError`` (exit 2) for a bare name found neither on PATH nor in the
    system directories: the timer would not find it either.
    """
    if os.sep in name:
        return absolute(name, base)
    found = find_program(name)
    if found is None:
        raise UsageError(
            f"{origin}: program {name!r} is not found on PATH nor in {', '.join(SYSTEM_DIRS)}",
            f"give its full path (e.g. /usr/local/bin/{name}), or install it",
        )
    return found


def trust_from_environment(env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(variable, absolute path) of the CA bundle the environment names for TLS, if any."""
    env = os.environ if env is None else env
    for var in TRUST_VARIABLES:
        if env.get(var):
            return var, absolute(env[var])
    return None
