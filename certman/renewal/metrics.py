"""Prometheus textfile-collector output of a renewal run, written atomically.

node_exporter reads ``*.prom`` files from its textfile directory at any moment, so
the file is replaced by rename and is never seen half-written.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import KeystoreError

METRICS = (
    ("certman_certificate_expiry_timestamp_seconds", "notAfter of the live certificate.", "not_after"),
    ("certman_certificate_next_renewal_timestamp_seconds", "When certman next renews or retries.", "next_renewal"),
    ("certman_certificate_last_success_timestamp_seconds", "Last successful issuance by a renew run.", "last_success"),
    ("certman_certificate_last_failure_timestamp_seconds", "Last failed attempt.", "last_failure"),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(report: Any) -> str:
    lines: list[str] = []
    for metric, help_text, attr in METRICS:
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        for r in report.results:
            moment = getattr(r, attr)
            if moment is not None:
                lines.append(f'{metric}{{name="{_label(r.name)}"}} {int(moment.timestamp())}')
    lines += [
        "# HELP certman_certificate_consecutive_failures Failed attempts since the last success.",
        "# TYPE certman_certificate_consecutive_failures gauge",
    ]
    lines += [
        f'certman_certificate_consecutive_failures{{name="{_label(r.name)}"}} {r.consecutive_failures}'
        for r in report.results
    ]
    lines += [
        "# HELP certman_certificate_ok 1 when the last run left the certificate without error.",
        "# TYPE certman_certificate_ok gauge",
    ]
    lines += [f'certman_certificate_ok{{name="{_label(r.name)}"}} {int(r.ok)}' for r in report.results]
    lines += [
        "# HELP certman_renew_last_run_timestamp_seconds When the renew run checked.",
        "# TYPE certman_renew_last_run_timestamp_seconds gauge",
        f"certman_renew_last_run_timestamp_seconds {int(report.checked_at.timestamp())}",
    ]
    return "\n".join(lines) + "\n"


def write_textfile(path: str | Path, report: Any) -> None:
    """Replace ``path`` with the metrics of ``report`` (world-readable: it holds no secret)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise KeystoreError(
            f"cannot write metrics file {path}: {exc.strerror}", "check that its directory exists and is writable"
        ) from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(render(report))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise KeystoreError(f"cannot write metrics file {path}: {exc.strerror}") from None
