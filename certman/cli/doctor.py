"""`certman doctor`"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..config import SERVER_ALIASES


@click.command("doctor")
@click.option("--server", help=f"ACME directory URL, or one of: {', '.join(SERVER_ALIASES)}.")
@click.option(
    "--ca-bundle", type=click.Path(path_type=Path), help="CA certificates to trust for the ACME server's TLS."
)
@click.option("--solver", help="Challenge solver to check: standalone, webroot or tls-alpn-01.")
@click.option("--http-address", help="Address the standalone HTTP-01 server binds (default: all).")
@click.option("--http-port", type=int, help="Port of the standalone HTTP-01 server (default 80).")
@click.option("--webroot", type=click.Path(path_type=Path), help="Document root for the webroot solver.")
@click.option("--tls-address", help="Address the tls-alpn-01 solver binds (default: all).")
@click.option("--tls-port", type=int, help="Port of the tls-alpn-01 solver (default 443).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
@click.pass_obj
def command(obj: Any, /, as_json: bool, **flags: Any) -> None:
    """Check what issue and renew will need, with the code they use; one line per check."""
    from ..doctor import diagnose
    from ..errors import CertmanError
    from . import echo_json
    from .terminal import status

    overrides = {**obj.overrides, **{k: (str(v) if isinstance(v, Path) else v) for k, v in flags.items()}}
    report = diagnose(obj.config_path, overrides=overrides)
    if as_json:
        echo_json(
            json.dumps(
                {
                    "ok": report.ok,
                    "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "hint": c.hint} for c in report.checks],
                },
                indent=2,
            )
        )
    else:
        for check in report.checks:
            click.echo(
                f"{status('ok' if check.ok else 'FAIL', 4)}  {check.name}: {check.detail}"
                + (f" (hint: {check.hint})" if not check.ok and check.hint else "")
            )
    if not report.ok:
        raise CertmanError(
            f"{len(report.failed)} of {len(report.checks)} checks failed",
            "fix the FAIL lines above, then run `certman doctor` again",
        )
