"""Files and programs a plugin's settings name, resolved as the timer resolves them: from ``/``, with ``TIMER_PATH``.

Which settings name a file or a program is what each plugin declares for recording
them (``plugins.settings.recorded_kinds``): a ``Path`` or ``FilePath`` setting, a
secret's ``<name>_file`` option, a ``Program``, an ``Argv``'s first item.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..paths import TIMER_PATH, search_path
from ..plugins.settings import recorded_kinds


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
            which = "the timer's PATH" if search_path == TIMER_PATH else "PATH"
            raise ConfigError(
                f"program {program} is not in {which} ({search_path})",
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
    renewal reads from ``/``, so each must be absolute, and whose programs it looks up
    in ``TIMER_PATH``. Otherwise a program is looked up as ``certman issue`` records it:
    in PATH, then the system directories.
    """
    problems: list[ConfigError] = []
    programs: list[Path] = []
    # A recorded program runs under the timer; a new certificate's is recorded as issue finds it.
    where = TIMER_PATH if recorded else search_path(env)
    for option, kind, value in _named(classes, options, env):
        if kind == "program":
            try:
                programs.append(find_program(value, where))
            except ConfigError as exc:
                problems.append(ConfigError(f"{option}: {exc.message}", exc.hint))
        elif recorded and not Path(value).expanduser().is_absolute():
            problems.append(
                ConfigError(
                    f"{option} = {value} is a relative path, which a renewal started from / would not find",
                    f"record the absolute path of {value}",
                )
            )
    return problems, programs


def _named(
    classes: Collection[type], options: Mapping[str, Any], env: Mapping[str, str]
) -> Iterator[tuple[str, str, str]]:
    """(option, "program" or "path", value) for each file or program the settings name, defaults included."""
    for cls in classes:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for option, kind in recorded_kinds(cls).items():
            f = fields.get(option)
            value = (
                options.get(option)
                if f is None
                else options.get(option, env.get(f.metadata.get("env") or "", f.default))
            )
            if kind == "argv":
                kind, value = "program", value[0] if isinstance(value, (list, tuple)) and value else None
            if isinstance(value, (str, Path)) and str(value):
                yield option, kind, str(value)
