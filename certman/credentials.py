"""Reading a secret (EAB HMAC key, TSIG secret, API token) from the environment or a file.

Secrets never travel in argv, where every local user can read them in /proc. Each
is taken from ``VAR`` or, better, from the file named by ``VAR_FILE`` (a systemd
credential, a Kubernetes secret mount). Every secret read here is registered with
the log redaction, so no log line or error message can carry it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError
from .log import register_secret

EAB_HMAC_VAR = "CERTMAN_EAB_HMAC_KEY"


def read_secret(var: str, env: Mapping[str, str] | None = None) -> str | None:
    """The secret in ``var`` or in the file ``var``_FILE names; None if neither is set."""
    env = os.environ if env is None else env
    direct, file_var = env.get(var), f"{var}_FILE"
    path = env.get(file_var)
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
    """A secret file's text; refused if every user may read it (the secret is then not one)."""
    try:
        with open(path, "rb") as fh:
            mode = os.fstat(fh.fileno()).st_mode
            data = fh.read()
    except OSError as exc:
        raise ConfigError(
            f"{file_var}: cannot read {path}: {exc.strerror}", "check the path, and that certman's user may read it"
        ) from None
    if mode & stat.S_IROTH:
        raise ConfigError(f"{file_var}: {path} is readable by every user", f"chmod o-r {path}")
    try:
        # One trailing newline is how editors and `echo` end a file; it is not part of the secret.
        return data.decode().removesuffix("\n")
    except UnicodeDecodeError:
        raise ConfigError(f"{file_var}: {path} is not UTF-8 text") from None


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
