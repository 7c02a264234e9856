"""`certman renew [NAME...]`: the unattended job for cron and systemd timers."""

from __future__ import annotations

import click

from . import CliContext, echo_json
from .completion import stored_names


@click.command("renew")
@click.argument("names", nargs=-1, shell_complete=stored_names)
@click.option("--force", is_flag=True, help="Renew now, whatever the due rule and the backoff say.")
@click.option("--check", is_flag=True, help="No network: print what is due, when and why.")
@click.option(
    "--jobs", type=click.IntRange(min=1), default=4, show_default=True, help="Certificates renewed concurrently."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document with a result per certificate.")
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False),
    help="Write a Prometheus textfile-collector file here (atomically).",
)
@click.option("--agree-tos", is_flag=True, default=None, help="Agree to the CA's terms of service.")
@click.option("--timeout", type=float, help="Give up on the CA after this many seconds per certificate.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Rehearse every selected certificate, due or not, at a staging twin where one is known; "
    "store, record and reload nothing.",
)
@click.option("--dry-run-server", help="Staging CA a dry run finalizes at (default: each CA's known twin).")
@click.pass_obj
def command(
    obj: CliContext,
    /,
    names: tuple[str, ...],
    force: bool,
    check: bool,
    jobs: int,
    as_json: bool,
    metrics_file: str | None,
    dry_run: bool,
    **flags: object,
) -> None:
    """Renew the certificates that are due (default: all stored and declared ones).

    Exit status: 0 when every certificate is fine, 7 when at least one failed
    (its error is printed and stored; the next run retries after a backoff).
    """
    from ..keystore import FileKeystore
    from ..renewal import metrics
    from ..renewal.job import renew
    from . import render_renew as _render_renew

    settings = obj.settings(**flags)
    keystore = FileKeystore(settings.keystore, lock_timeout=settings.lock_timeout)
    # A check or a dry run stores nothing: the fleet protocol is for runs that commit.
    if settings.store and not check and not dry_run:
        from .fleet_renew import renew_in_fleet

        renew_in_fleet(keystore, settings, names, force, jobs, as_json, metrics_file)
        return
    report = renew(keystore, settings, names=names, force=force, check=check, jobs=jobs, dry_run=dry_run)
    # The per-certificate results first: a metrics file that cannot be written
    # (exit 3) must not hide what the run did.
    (echo_json if as_json else click.echo)(_render_renew.renew_report(report, as_json=as_json))
    for failed in report.failed:
        click.echo(f"certman: {failed.name}: {failed.error}", err=True)
        click.echo(
            f"hint: {failed.hint or 'run again with -v for details; `certman explain` says when it is retried'}",
            err=True,
        )
    # A rehearsal (--check, --dry-run) changes nothing, so it neither notifies nor writes metrics.
    if not check and not dry_run:
        from ..notify import after_renew

        after_renew(keystore, settings, report)
    if metrics_file and not check and not dry_run:
        metrics.write_textfile(metrics_file, report)
    if report.exit_code:
        click.get_current_context().exit(report.exit_code)
