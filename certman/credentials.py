"""Reading a secret (EAB HMAC key, TSIG secret, API token) from the environment or a file.

Secrets never travel in argv, where every local user can read them in /proc. Each
is taken from ``VAR`` or, better, from the file named by ``VAR_FILE`` (a systemd
credential, a Kubernetes secret mount). Every secret read here is registered with
the log redaction, so no log line or error message can carry it. An empty variable
counts as unset, as a shell's ``VAR=`` means "no value".

Every secret file certman reads (EAB HMAC key, TSIG secret, any plugin's
``<secret>_file``) goes through ``read_secret_file``: refused when every user may
read it, a warning when its group may.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError
from .log import register_secret

EAB_HMAC_VAR = "CERTMAN_EAB_HMAC_KEY"

log = logging.getLogger(__name__)


def read_secret(var: str, env: Mapping[str, str] | None = None) -> str | None:
    """The secret in ``var`` or in the file ``var``_FILE names; None if neither is set (or both empty).

    ``ConfigError`` (exit 2) if both are set, or the file is refused (``read_secret_file``).
    """
    env = os.environ if env is None else env
    file_var = f"{var}_FILE"
    direct, path = env.get(var) or None, env.get(file_var) or None
    if direct is not None and path is not None:
        raise ConfigError(f"both {var} and {file_var} are set", f"set only one of them (prefer {file_var})")
    if path is not None:
        value = read_secret_file(Path(path), file_var)
    elif direct is not None:
        value = direct
    else:
        return None
    if not value:
        raise ConfigError(f"{file_var if path is not None else var} gives an empty secret")
    register_secret(value)
    return value


def read_secret_file(path: Path, file_var: str) -> str:
    """A secret file's text without one trailing newline, registered for redaction.

    ``file_var`` says where the path came from ("CERTMAN_EAB_HMAC_KEY_FILE", "option
    key_secret_file"). ``ConfigError`` (exit 2) if it cannot be read, is not a regular
    file, is readable by every user (the secret is then not one) or is not UTF-8; a
    warning if its group may read it. Modes are checked on the opened file, so a
    rename between check and read changes nothing.
    """
    try:
        # O_NONBLOCK: a FIFO put in the secret's place is refused below, not waited on.
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(f"{file_var}: {path} is not a regular file", "name the file that holds the secret")
            if st.st_mode & stat.S_IROTH:
                raise ConfigError(f"{file_var}: {path} is readable by every user", f"chmod o-r {path}")
            data = fh.read()
    except OSError as exc:
        raise ConfigError(
            f"{file_var}: cannot read {path}: {exc.strerror}", "check the path, and that certman's user may read it"
        ) from None
    if st.st_mode & stat.S_IRGRP:
        log.warning(
            "%s: %s is readable by its group (gid %d); chmod g-r %s if no one else should",
            file_var,
            path,
            st.st_gid,
            path,
        )
    try:
        # One trailing newline is how editors and `echo` end a file; it is not part of the secret.
        value = data.decode().removesuffix("\n")
    except UnicodeDecodeError:
        raise ConfigError(f"{file_var}: {path} is not UTF-8 text") from None
    register_secret(value)
    return value


def scrubbed_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` without certman's secrets, for the programs certman starts (hooks, DNS scripts).

    Drops every secret setting of every plugin (and its ``_FILE`` variant) and the EAB
    HMAC key, by name. Variables of the operator's own stay: an exec DNS hook may
    need its own credentials to do its job.
    """
    env = os.environ if env is None else env
    names = _secret_variables()
    return {k: v for k, v in env.items() if k not in names}


def _secret_variables() -> set[str]:
    import dataclasses

    from .plugins import registry as plugins

    names = {EAB_HMAC_VAR, "CERTMAN_NOTIFY_URLS", "CERTMAN_NOTIFY_URLS_FILE"}
    for kind in plugins.GROUPS:
        for ref in plugins.available(kind).values():
            try:
                classes = getattr(ref.load(), "settings_classes", ())
            except ConfigError:
                continue
            names |= {
                f.metadata["env"]
                for cls in classes
                for f in dataclasses.fields(cls)
                if f.metadata.get("secret") and f.metadata.get("env")
            }
    return names | {f"{name}_FILE" for name in names}
