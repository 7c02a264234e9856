"""The ``command`` reloader: run a program (argv, never a shell) after certificates change.

    [[reloader]]
    name = "command"
    argv = ["systemctl", "reload", "nginx"]
    timeout = 60

The environment tells the program what changed. Each variable holds one entry per
certificate of the batch, in ``CERTMAN_NAME`` order: names and domains separated by
spaces, paths by ``:`` (like ``PATH``). With one certificate they are plain values.

    CERTMAN_NAME       keystore name(s)
    CERTMAN_DOMAINS    every identifier of every certificate
    CERTMAN_LIVE_DIR   live directory per certificate (holds the files below)
    CERTMAN_FULLCHAIN, CERTMAN_CERT, CERTMAN_CHAIN, CERTMAN_PRIVKEY, CERTMAN_COMBINED
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ... import children
from ...credentials import scrubbed_env
from ...errors import ReloadError
from ...log import redact
from ...paths import program_env
from ...plugins.settings import Argv, Seconds, setting
from ..served import VerifySettings, reloader_settings
from . import Deployment

DEFAULT_TIMEOUT = 60.0
OUTPUT_TAIL = 300


@dataclass(frozen=True)
class CommandSettings:
    argv: Argv = setting(help='The program and its arguments, e.g. ["systemctl", "reload", "nginx"]; no shell.')
    timeout: Seconds = setting(help="Seconds the program may run before it is killed.", default=DEFAULT_TIMEOUT)


def deployment_env(deployments: Sequence[Deployment]) -> dict[str, str]:
    """The CERTMAN_* variables describing ``deployments`` (see the module docstring)."""

    def paths(attr: str) -> str:
        return os.pathsep.join(str(getattr(d.live, attr)) for d in deployments)

    return {
        "CERTMAN_NAME": " ".join(d.name for d in deployments),
        "CERTMAN_DOMAINS": " ".join(i for d in deployments for i in d.identifiers),
        "CERTMAN_LIVE_DIR": os.pathsep.join(str(d.live.directory) for d in deployments),
        "CERTMAN_FULLCHAIN": paths("fullchain"),
        "CERTMAN_CERT": paths("cert"),
        "CERTMAN_CHAIN": paths("chain"),
        "CERTMAN_PRIVKEY": paths("privkey"),
        "CERTMAN_COMBINED": paths("combined"),
    }


class CommandReloader:
    """Runs ``argv`` once per batch; a non-zero exit or a timeout is a ReloadError.

    The program runs as every child of certman does (``certman.children``): done when
    it exits, whatever it left running in the background (a daemon) is left alone.
    """

    settings_classes: ClassVar[tuple[type, ...]] = (CommandSettings, VerifySettings)

    def __init__(self, settings: CommandSettings) -> None:
        self.settings = settings

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> CommandReloader:
        """The reloader a ``[[reloader]]`` table describes; a bad option is a ConfigError naming it."""
        return cls(reloader_settings(CommandSettings, options, plugin="command reloader"))

    def reload(self, deployments: Sequence[Deployment]) -> None:
        argv = list(self.settings.argv)
        env = {**program_env(scrubbed_env()), **deployment_env(deployments)}
        try:
            done = children.run(argv, env=env, timeout=self.settings.timeout)
        except FileNotFoundError:
            raise ReloadError(
                f"reload command {argv[0]!r} not found", "give the full path of the program in argv"
            ) from None
        except PermissionError:
            raise ReloadError(f"reload command {argv[0]!r} is not executable") from None
        except children.ChildTimedOut:
            raise ReloadError(
                f"reload command {argv[0]!r} did not finish within {self.settings.timeout:g} s",
                "it was killed; raise the reloader's timeout or fix the command",
            ) from None
        if done.returncode != 0:
            output = (done.stderr or done.stdout).decode(errors="replace").strip()
            tail = redact(output[-OUTPUT_TAIL:]).replace("\n", " ") if output else None
            raise ReloadError(f"reload command {argv[0]!r} exited with status {done.returncode}", tail)
