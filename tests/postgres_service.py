"""A real PostgreSQL 15 (Debian's) for the fleet-store tests, started with initdb and pg_ctl.

initdb and postgres refuse to run as root, so as root the cluster runs as the
``postgres`` user, in a directory made for it under /tmp (pytest's tmp_path sits
under a 0700 directory that user cannot enter). It listens on 127.0.0.1 at a free
port with password (SCRAM) authentication, as a fleet's database would, and on a
Unix socket in its directory with trust, for the tests' own administration.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import services

PG_BINDIR = Path("/usr/lib/postgresql/15/bin")
ROLE = "certman"
ROLE_PASSWORD = "fleet-test-password"
_databases = itertools.count(1)


def _binary(name: str) -> str:
    path = PG_BINDIR / name
    if path.exists():
        return str(path)
    return services.require_binary(name, "postgresql-15")


@dataclass
class Postgres:
    """A running cluster: ``dsn(db)`` is what a host's certman.toml would say (no password)."""

    port: int
    socket_dir: Path
    data_dir: Path
    user: str | None
    service: services.Service = field(repr=False)

    def dsn(self, database: str) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser through the Unix socket; its output, unaligned."""
        argv = [_binary("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir)]
        argv += ["-p", str(self.port), "-U", "postgres", "-d", database, "-c", sql]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise services.ServiceError(f"psql failed: {done.stderr}")
        return done.stdout

    def new_database(self) -> str:
        """A fresh, empty database owned by the certman role."""
        name = f"fleet_{os.getpid()}_{next(_databases)}"
        self.admin(f"CREATE DATABASE {name} OWNER {ROLE} TEMPLATE template0")
        return name

    def pg_ctl(self, *args: str) -> None:
        argv = [_binary("pg_ctl"), "-D", str(self.data_dir), *args]
        subprocess.run(argv, check=True, capture_output=True, user=self.user, group=self.user)

    def stop(self) -> None:
        """A fast shutdown (clients disconnected); idempotent."""
        if self.service.process is not None and self.service.process.poll() is None:
            self.pg_ctl("stop", "-m", "fast", "-w")
        self.service.stop()

    def start(self) -> None:
        """Start (again) on the same port and data: what a restarted database server looks like."""
        self.service.start(self.ready)

    def ready(self) -> bool:
        done = subprocess.run(
            [_binary("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False, capture_output=True
        )
        return done.returncode == 0


@contextlib.contextmanager
def start_postgres() -> Iterator[Postgres]:
    """initdb a cluster in a fresh /tmp directory, run it until the block exits, then remove it."""
    user = "postgres" if os.geteuid() == 0 else None
    workdir = Path(tempfile.mkdtemp(prefix="certman-pg-"))
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(workdir, entry.pw_uid, entry.pw_gid)
        data_dir, pwfile = workdir / "data", workdir / "pwfile"
        pwfile.write_text(ROLE_PASSWORD + "\n")
        if user is not None:
            os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)
        initdb = [_binary("initdb"), "-D", str(data_dir), "-U", "postgres", "--pwfile", str(pwfile)]
        initdb += ["--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C"]
        done = subprocess.run(initdb, capture_output=True, text=True, check=False, user=user, group=user)
        if done.returncode != 0:
            raise services.ServiceError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        port = services.free_port()
        argv = [_binary("postgres"), "-D", str(data_dir), "-p", str(port), "-k", str(workdir)]
        # fsync off: the tests test certman's commits, not the disk's; the server's own
        # atomicity (WAL) is unchanged.
        argv += ["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"]
        service = services.Service("postgresql", argv, workdir / "postgresql.log", cwd=workdir, user=user)
        server = Postgres(port, workdir, data_dir, user, service)
        server.start()
        try:
            server.admin(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE_PASSWORD}'")
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
