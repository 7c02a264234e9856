"""Where the run log is (``certman.log_file``), and whether certman can write there."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path

from ..log_file import day_path, default_path
from .report import Check
from .scope import Scope


def log_checks(scope: Scope) -> Iterator[Check]:
    settings = scope.settings
    if settings.log_file == "":
        yield Check("log", True, 'off (log_file = "")')
        return
    base = Path(settings.log_file) if settings.log_file else default_path(Path(settings.keystore))
    today = day_path(base, datetime.datetime.now(datetime.UTC).date())
    where = f"{base.parent}/{base.stem}-YYYY-MM-DD{base.suffix} (UTC days, kept {settings.log_retention_days} days)"
    directory = next((p for p in (base.parent, *base.parent.parents) if p.exists()), None)
    if directory is None or not os.access(directory, os.W_OK):
        yield Check(
            "log", False, f"{where}: {directory or base.parent} is not writable", "set log_file to a writable path"
        )
        return
    yield Check("log", True, where + (f"; today's is {today}" if today.exists() else ""))
