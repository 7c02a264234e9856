"""`certman renew` when a fleet store is configured: the fleet protocol (docs/fleet.md)."""

from __future__ import annotations

import json
from typing import Any

import click


def renew_in_fleet(
    keystore: Any,
    settings: Any,
    names: tuple[str, ...],
    force: bool,
    jobs: int,
    as_json: bool,
    metrics_file: str | None,
) -> None:
    """Pull, lease what is due, renew, commit fenced; print as `renew` does, pulls first."""
    from ..fleet.renew import fleet_renew
    from ..fleet.settings import open_store
    from ..renewal import metrics
    from . import render_renew as _render_renew

    store = open_store(settings)
    try:
        outcome = fleet_renew(
            keystore, store, settings, names=names, force=force, jobs=jobs, lease_ttl=settings.lease_ttl
        )
    finally:
        store.close()
    report = outcome.report
    if as_json:
        document = report.to_dict()
        document["pulled"] = [
            {"name": p.name, "action": p.action, "version": p.version, "serial": p.serial, "error": p.error}
            for p in outcome.pulled
        ]
        document["exit_code"] = outcome.exit_code
        click.echo(json.dumps(document))
    else:
        for pulled in outcome.pulled:
            if pulled.action == "installed":
                click.echo(f"{pulled.name}: pulled version {pulled.version} (serial {pulled.serial}) from the store")
        click.echo(_render_renew.renew_report(report, as_json=False))
    failures: list[Any] = [*(p for p in outcome.pulled if not p.ok), *report.failed]
    for failed in failures:
        click.echo(f"certman: {failed.name}: {failed.error}", err=True)
        if failed.hint:
            click.echo(f"hint: {failed.hint}", err=True)
    if metrics_file:
        metrics.write_textfile(metrics_file, report)
    if outcome.exit_code:
        click.get_current_context().exit(outcome.exit_code)
