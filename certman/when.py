"""Times and spans as people read them.

Every human output (list, show, explain, renew) writes a time as
``YYYY-MM-DD HH:MM UTC`` and counts days left with ``days_left``, so no two commands
disagree about the same certificate. JSON keeps the stored ``YYYY-MM-DDTHH:MM:SSZ``
(``keystore.times.encode_time``).
"""

from __future__ import annotations

import datetime
import re

HUMAN_FORMAT = "%Y-%m-%d %H:%M UTC"
DAY = 86400
_STORED = re.compile(r"\b(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}):\d{2}Z\b")


def human_time(moment: datetime.datetime | None, missing: str = "-") -> str:
    """``moment`` as ``YYYY-MM-DD HH:MM UTC`` (converted to UTC), or ``missing``."""
    if moment is None:
        return missing
    if moment.tzinfo is not datetime.UTC:
        moment = moment.astimezone(datetime.UTC)
    # An f-string, not strftime: a renew over thousands of certificates formats two per row.
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} {moment.hour:02d}:{moment.minute:02d} UTC"


def human_date(moment: datetime.datetime | None) -> str:
    """The ``YYYY-MM-DD`` part of ``human_time``: the same format, cut for narrow tables."""
    return human_time(moment)[:10]


def days_left(not_after: datetime.datetime, now: datetime.datetime) -> int:
    """Whole days from ``now`` until ``not_after``, rounded down (negative once expired)."""
    return int((not_after - now).total_seconds() // DAY)


def span(delta: datetime.timedelta, *, nearest: bool = False) -> str:
    """A duration in words; whole days are counted as ``days_left`` counts them (rounded
    down), or to the ``nearest`` day for a length such as a lifetime."""
    seconds = abs(delta.total_seconds())
    if seconds >= 2 * DAY:
        return f"{round(seconds / DAY) if nearest else int(seconds // DAY)} days"
    if seconds >= 2 * 3600:
        return f"{int(seconds // 3600)} hours"
    return f"{max(int(seconds // 60), 1)} minutes"


def humanize_times(text: str) -> str:
    """``text`` with every stored-format time (``2026-03-01T12:00:00Z``, as reasons carry
    them) in the human format."""
    return _STORED.sub(r"\1 \2 UTC", text)
