"""The log to read afterwards: every run that changes state or talks to the CA appends to it.

One file per UTC day, ``<stem>-YYYY-MM-DD<suffix>`` beside ``log_file`` (default
``<keystore>/logs/certman.log``, so ``<keystore>/logs/certman-2026-12-01.log``), mode
0600. Several processes write at once (the timer, a manual run, a challenge server):
each opens the day's file with ``O_APPEND`` and writes each record, traceback included,
with one ``write(2)``, so lines never interleave and no process renames a file another
still writes (``RotatingFileHandler`` does both wrong). Files older than the retention
are deleted when a run starts. Times are UTC and say so; every line is redacted
(``certman.log``) and at debug level.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import sys
import threading
from pathlib import Path

from .log import RedactingFilter, RedactingFormatter

DEFAULT_RETENTION_DAYS = 30
_FORMAT = "%(asctime)s UTC %(process)d %(levelname)s %(name)s: %(message)s"


def default_path(keystore: Path) -> Path:
    return keystore / "logs" / "certman.log"


def day_path(base: Path, day: datetime.date) -> Path:
    """The file of ``day`` for ``base`` (``certman.log`` -> ``certman-2026-12-01.log``)."""
    return base.with_name(f"{base.stem}-{day.isoformat()}{base.suffix}")


class UTCFormatter(RedactingFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{int(record.msecs):03d}"


class DailyFileHandler(logging.Handler):
    """Appends each record to the file of its UTC day, one ``write(2)`` per record.

    Nothing is written (records wait in memory) until ``keystore`` exists: a run that
    stops at bad input before the keystore is made leaves no trace on disk at all.
    """

    def __init__(self, base: Path, keystore: Path, retention_days: int = DEFAULT_RETENTION_DAYS) -> None:
        super().__init__(logging.DEBUG)
        self.base = base
        self.keystore = keystore
        self.retention_days = retention_days
        self._waiting: list[bytes] | None = []
        self._day: datetime.date | None = None
        self._fd: int | None = None
        self._io = threading.Lock()
        self.setFormatter(UTCFormatter(_FORMAT))
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8", "replace")
            day = datetime.datetime.fromtimestamp(record.created, datetime.UTC).date()
            with self._io:
                if self._waiting is not None:
                    self._waiting.append(data)
                    if not self.keystore.is_dir() or not self._open_dir(day):
                        return
                    data, self._waiting = b"".join(self._waiting), None
                if day != self._day or self._fd is None:
                    self._reopen(day)
                assert self._fd is not None
                os.write(self._fd, data)
        except OSError as exc:
            # A disk error on the run log is one line, never logging's traceback, and the run goes on.
            self._give_up(exc.strerror or type(exc).__name__)
        except Exception:
            self.handleError(record)

    def _give_up(self, reason: str) -> None:
        logging.getLogger(__name__).removeHandler(self)
        logging.getLogger().removeHandler(self)
        self._waiting = []
        sys.stderr.write(f"certman: not logging to {self.base.parent}: {reason}\n")

    def _open_dir(self, day: datetime.date) -> bool:
        from .errors import CertmanError
        from .keystore.files import ensure_dir

        try:
            # Made as the keystore makes its directories: 0700, parents too, checked if present.
            ensure_dir(self.base.parent)
            prune(self.base, self.retention_days, day)
        except (OSError, CertmanError) as exc:
            self._give_up(exc.message if isinstance(exc, CertmanError) else str(exc.strerror))
            return False
        return True

    def _reopen(self, day: datetime.date) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(day_path(self.base, day), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._day = day

    def close(self) -> None:
        with self._io:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        super().close()


def prune(base: Path, retention_days: int, today: datetime.date) -> list[Path]:
    """Delete the day files of ``base`` older than ``retention_days``; return them."""
    pattern = re.compile(re.escape(base.stem) + r"-(\d{4}-\d{2}-\d{2})" + re.escape(base.suffix))
    removed = []
    for path in base.parent.glob(f"{base.stem}-*{base.suffix}"):
        match = pattern.fullmatch(path.name)
        if match is None:
            continue
        try:
            age = (today - datetime.date.fromisoformat(match.group(1))).days
        except ValueError:
            continue
        if age > retention_days:
            try:
                path.unlink()
                removed.append(path)
            except FileNotFoundError:
                pass  # another run pruned it first
    return removed


def attach(base: Path, keystore: Path, retention_days: int = DEFAULT_RETENTION_DAYS) -> DailyFileHandler:
    """Log this process at debug level to the day files of ``base`` once ``keystore``
    exists (old days pruned then); a log that cannot be written says so once on stderr
    and never stops the run it records."""
    handler = DailyFileHandler(base, keystore, retention_days)
    root = logging.getLogger()
    root.addHandler(handler)
    # The stderr handler keeps the level -v chose; the file gets everything.
    for other in root.handlers:
        if other is not handler and other.level == logging.NOTSET:
            other.setLevel(root.level)
    root.setLevel(logging.DEBUG)
    return handler
