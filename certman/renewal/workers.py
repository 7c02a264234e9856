"""Worker processes for a large renew run: one Python process issues on one core at most.

A renew run issues its due certificates on ``jobs`` threads, but the threads share one
interpreter lock: on the 2-core bench machine a run of 100 certificates kept certman at
one core while Pebble used a fifth of the other (bench/bench_scale.py). So a run with
enough certificates to pay for a process start (``PLANS_PER_PROCESS`` each) splits them
over this process and up to one spawned worker per further core, each with its share of
the plans and of the jobs and its own ACME sessions, on the same keystore.

What makes that safe is what makes two certman runs on one keystore safe: the
per-certificate and keystore flocks, the index journal, and the challenge-server
rendezvous (``certman.solvers.shared``), through which a worker answers HTTP-01 and
TLS-ALPN-01 on the port another process of the run holds. This process keeps the
renewal lock for the whole run and runs the reloaders once, after every worker is done.
Workers are spawned, never forked: a fork would inherit this process's lock files and
threads. Their log records come back here, already redacted, to this process's handlers.
Each worker talks to this process through pipes of its own, never a shared
``multiprocessing.Queue``: a worker killed while writing to a queue leaves its lock taken,
and this process stuck on it (seen when a worker got SIGTERM).
"""

from __future__ import annotations

import ctypes
import dataclasses
import datetime
import logging
import logging.handlers
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from .. import children
from ..config import Settings
from ..log import RedactingFilter, register_secret, registered_secrets
from .plan import Plan
from .report import CertResult

if TYPE_CHECKING:
    from ..ca.accounts import AccountSettings
    from ..keystore import FileKeystore

log = logging.getLogger(__name__)

# A spawned worker starts an interpreter and imports the ACME stack: about 0.5 s of CPU
# on the bench machine, what issuing some ten certificates costs. One per 32 planned
# certificates keeps that under a third of what it takes off the run.
PLANS_PER_PROCESS = 32
# prctl(2): the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


class Share(msgspec.Struct, frozen=True):
    """What a worker process needs besides its plans: the run's keystore, settings and moment."""

    keystore: str
    lock_timeout: float
    settings: Settings
    account: AccountSettings | None
    now: datetime.datetime
    jobs: int


def process_count(plans: int, jobs: int, *, cores: int | None = None) -> int:
    """How many processes (this one included) issue ``plans`` certificates on ``jobs`` threads
    in all: one per ``PLANS_PER_PROCESS`` plans, at most one per core this process may use,
    never more than ``jobs``."""
    usable = cores if cores is not None else len(os.sched_getaffinity(0))
    return max(1, min(usable, jobs, plans // PLANS_PER_PROCESS))


def run_plans(
    keystore: FileKeystore,
    share: Share,
    plans: list[Plan],
    run_here: Callable[[list[Plan], int], list[CertResult]],
) -> list[CertResult]:
    """Each plan's result, in order. ``run_here(plans, jobs)`` issues a share in this process;
    the other shares go to spawned workers, and come back with their plans as the workers
    left them (state, deployment and action updated), copied onto ``plans``.

    A worker that dies (killed, out of memory) fails its share's certificates with a
    message saying so; whatever it stored stays, and the next run decides from it. A
    worker that cannot start leaves its share to this process. An exception here (Ctrl-C,
    SIGTERM) terminates the workers before it goes on.
    """
    processes = process_count(len(plans), share.jobs)
    if processes == 1 or keystore.token_board is not None:
        # A fleet host answers HTTP-01 through its store, not through this keystore's rendezvous.
        return run_here(plans, share.jobs)
    # Round robin: a name-sorted run would otherwise give one process all of one CA or domain.
    shares = [plans[i::processes] for i in range(processes)]
    jobs = [share.jobs // processes + (1 if i < share.jobs % processes else 0) for i in range(processes)]
    context = multiprocessing.get_context("spawn")
    levels = {name: logging.getLogger(name).level for name in ("", "acme")}
    secrets = registered_secrets()
    workers: list[_Worker] = []
    here, here_jobs = list(shares[0]), jobs[0]
    try:
        for i in range(1, processes):
            worker = _Worker.start(context, msgspec.structs.replace(share, jobs=jobs[i]), shares[i], levels, secrets)
            if worker is None:
                here, here_jobs = here + shares[i], here_jobs + jobs[i]
            else:
                workers.append(worker)
        done = dict(zip(map(id, here), run_here(here, here_jobs), strict=True))
        for worker in workers:
            done.update(worker.collect())
    except BaseException:
        for worker in workers:
            worker.process.terminate()
        raise
    finally:
        for worker in workers:
            worker.close()
    return [done[id(p)] for p in plans]


class _Worker:
    """A spawned worker: its process, the pipe its results come back on, the thread that
    hands its log records to this process's handlers, and the plans it was sent."""

    def __init__(self, process: Any, results: Any, relay: threading.Thread, plans: list[Plan]) -> None:
        self.process = process
        self.results = results
        self.relay = relay
        self.plans = plans

    @classmethod
    def start(
        cls, context: Any, share: Share, plans: list[Plan], levels: dict[str, int], secrets: frozenset[str]
    ) -> _Worker | None:
        """A started worker, or None (logged) when no process can be started."""
        results, results_end = context.Pipe(duplex=False)
        logs, logs_end = context.Pipe(duplex=False)
        process = context.Process(
            target=_work, args=(share, plans, levels, secrets, results_end, logs_end), daemon=True
        )
        try:
            process.start()
        except OSError as exc:
            log.warning("cannot start a worker process (%s); its certificates are renewed here", exc.strerror)
            results.close()
            logs.close()
            return None
        finally:
            # Only the worker holds the sending ends now: when it is gone, both pipes end.
            results_end.close()
            logs_end.close()
        relay = threading.Thread(target=_relay, args=(logs,), name=f"certman-worker-log-{process.pid}")
        relay.start()
        return cls(process, results, relay, plans)

    def collect(self) -> dict[int, CertResult]:
        """The worker's results by ``id`` of the plans it was sent, its plans' updates copied onto them."""
        try:
            returned: list[tuple[Plan, CertResult]] = self.results.recv()
        except EOFError:
            self.process.join()
            code = self.process.exitcode or 0
            how = f"was killed by signal {-code}" if code < 0 else "ended unexpectedly"
            return {
                id(plan): CertResult(
                    plan.name,
                    "failed",
                    plan.reason,
                    error=f"the worker process renewing it {how}",
                    hint="run `certman renew` again: it goes on from what was stored",
                )
                for plan in self.plans
            }
        done = {}
        for plan, (copy, result) in zip(self.plans, returned, strict=True):
            for field in dataclasses.fields(Plan):
                setattr(plan, field.name, getattr(copy, field.name))
            done[id(plan)] = result
        return done

    def close(self) -> None:
        self.process.join()
        self.relay.join()
        self.results.close()


def _relay(logs: Any) -> None:
    """Hand a worker's log records to this process's handlers until the worker is gone."""
    try:
        while True:
            try:
                record: logging.LogRecord = logs.recv()
            except (EOFError, OSError):
                return
            for handler in logging.getLogger().handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
    finally:
        logs.close()


class _LogPipe:
    """Where a worker's ``QueueHandler`` puts its records: the pipe to its parent's relay."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def put_nowait(self, record: logging.LogRecord) -> None:
        try:
            self.connection.send(record)
        except OSError:
            pass  # the parent is gone: nobody is left to read the line


def _work(
    share: Share, plans: list[Plan], levels: dict[str, int], secrets: frozenset[str], results: Any, logs: Any
) -> None:
    """A spawned worker's whole life: its share of the run, its plans and results sent back."""
    _die_with_parent()
    for secret in secrets:
        register_secret(secret)
    handler = logging.handlers.QueueHandler(_LogPipe(logs))  # type: ignore[arg-type]
    # Redacted here too: a plugin may read a secret (an API token) only in this process.
    handler.addFilter(RedactingFilter())
    logging.getLogger().handlers[:] = [handler]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)

    from ..keystore import FileKeystore
    from .runner import Runner

    keystore = FileKeystore(share.keystore, lock_timeout=share.lock_timeout)
    runner = Runner(keystore, share.settings, share.account, share.now, jobs=share.jobs)
    # The parent dropped these digests and holds the renewal lock for the whole run; noting
    # it here too lets this keystore write their states without touching the index.
    with keystore.digests_dropped([p.name for p in plans]):
        outcome = runner.run_all(plans, share.jobs)
    results.send(list(zip(plans, outcome, strict=True)))


def _die_with_parent() -> None:
    """Ctrl-C at a terminal reaches the whole process group: the parent handles it (and
    terminates this worker). A parent killed outright takes this worker with it. On
    SIGTERM, the programs this worker started (a DNS provider's hook) go first: they run
    in sessions of their own, which the signal does not reach."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminated)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _terminated(signum: int, frame: object) -> None:
    try:
        children.stop_all()
    finally:
        os._exit(128 + signum)
