"""Files and programs a renewal needs, resolved as the timer resolves them: from ``/``, with ``TIMER_PATH``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..plugins.settings import NamedFile, named_files
from ..renewal.timer import TIMER_PATH


def find_program(program: str, search_path: str = TIMER_PATH) -> Path:
    """Where the timer finds ``program``: an absolute path as given, a bare name in ``search_path``.

    Raises ConfigError naming the program for a relative path, a program found nowhere,
    or a file that is not executable.
    """
    if "/" in program:
        path = Path(program).expanduser()
        if not path.is_absolute():
            raise ConfigError(
                f"program {program} is a relative path, which a renewal started from / would not find",
                "give the program's absolute path",
            )
    else:
        found = shutil.which(program, path=search_path)
        if found is None:
            here = shutil.which(program)
            raise ConfigError(
                f"program {program} is not in the timer's PATH ({search_path})",
                f"give its absolute path: {here}" if here else "install it, or give the program's absolute path",
            )
        path = Path(found)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ConfigError(f"program {path} is not an executable file", "install it, or fix the path (chmod +x)")
    return path


def file_problems(
    classes: Collection[type], options: Mapping[str, Any], env: Mapping[str, str], *, recorded: bool
) -> tuple[list[ConfigError], list[Path]]:
    """What is wrong with the programs and files a plugin's settings name, and the programs found.

    ``recorded``: the options belong to a stored or declared certificate, whose paths a
    renewal reads from ``/``, so each must be absolute.
    """
    problems: list[ConfigError] = []
    programs: list[Path] = []
    for named in named_files(classes, options, env):
        if named.kind == "program":
            try:
                programs.append(find_program(named.value))
            except ConfigError as exc:
                problems.append(ConfigError(f"{named.setting}: {exc.message}", exc.hint))
        elif recorded and not Path(named.value).expanduser().is_absolute():
            problems.append(_relative(named))
    return problems, programs


def _relative(named: NamedFile) -> ConfigError:
    return ConfigError(
        f"{named.kind} {named.setting} = {named.value} is a relative path, "
        "which a renewal started from / would not find",
        f"record the absolute path of {named.value}",
    )
