"""A DNS provider that is a program of the operator's: ``PROGRAM present|cleanup FQDN VALUE``.

Run as an argv without a shell (a CA-influenced string must never meet a shell), with
the same data also in the environment: CERTMAN_DNS_ACTION, CERTMAN_DNS_FQDN,
CERTMAN_DNS_VALUE. Its own credentials come from the environment certman runs in.
Exit 0 means done; anything else fails the challenge with the program's last
line of stderr. ``cleanup`` of a value that is not there must exit 0. The program
runs as every child of certman does (``certman.children``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ... import children
from ...credentials import scrubbed_env
from ...errors import ConfigError, SolverError
from ...log import redact
from ...plugins.settings import FilePath, Seconds, setting, settings_from


@dataclass(frozen=True)
class ExecSettings:
    program: FilePath = setting(
        help="Path of the program to run as PROGRAM present|cleanup FQDN VALUE.", env="CERTMAN_EXEC_PROGRAM"
    )
    timeout: Seconds = setting(
        help="Seconds the program may run before it is killed.", env="CERTMAN_EXEC_TIMEOUT", default=60.0
    )


class ExecProvider:
    """Runs the operator's program to add and remove each TXT value."""

    settings_classes: ClassVar[tuple[type, ...]] = (ExecSettings,)

    def __init__(self, settings: ExecSettings, env: Mapping[str, str] | None = None) -> None:
        if not os.access(settings.program, os.X_OK):
            raise ConfigError(
                f"exec DNS provider: {settings.program} is not an executable file",
                "give the full path of an executable program (chmod +x)",
            )
        self.settings = settings
        self.env = scrubbed_env(os.environ if env is None else env)

    @classmethod
    def from_options(cls, options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> ExecProvider:
        return cls(settings_from(ExecSettings, options, plugin="exec DNS provider", env=env), env)

    def add_txt(self, fqdn: str, value: str) -> None:
        self._run("present", fqdn, value)

    def remove_txt(self, fqdn: str, value: str) -> None:
        self._run("cleanup", fqdn, value)

    def _run(self, action: str, fqdn: str, value: str) -> None:
        env = {**self.env, "CERTMAN_DNS_ACTION": action, "CERTMAN_DNS_FQDN": fqdn, "CERTMAN_DNS_VALUE": value}
        argv = [self.settings.program, action, fqdn, value]
        try:
            result = children.run(argv, env=env, timeout=self.settings.timeout)
        except children.ChildTimedOut:
            raise SolverError(
                f"exec DNS provider: {self.settings.program} {action} {fqdn} did not finish "
                f"within {self.settings.timeout:g} s",
                "it was killed; check what it waits for",
            ) from None
        except OSError as exc:
            raise SolverError(f"exec DNS provider: cannot run {self.settings.program}: {exc.strerror}") from None
        if result.returncode != 0:
            lines = [line for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
            said = f": {redact(lines[-1].strip())[:300]}" if lines else ""
            raise SolverError(
                f"exec DNS provider: {self.settings.program} {action} {fqdn} exited with {result.returncode}{said}",
                "run it by hand with the same arguments to see why",
            )
