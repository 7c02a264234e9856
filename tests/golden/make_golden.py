"""Make tests/golden/keystore-v0.1/: a keystore written by certman 0.1 (the code of issue 10's start).

Run once, from the repository root, with the code whose files are to be kept. It drives
the 0.1 library API (``renew(..., now=)``), so it runs only at the commit that made the
keystore (f6f0657), not at later ones:

    .venv/bin/python tests/golden/make_golden.py

It starts a Pebble (six-day certificates) with an ARI proxy in front, serves HTTP-01
from a webroot, and drives the library as an operator would:

    alpha.example   issued, renewed (two versions), ARI window fetched and stored
    beta.example    issued, then a forced renewal refused with 429 + Retry-After:
                    consecutive_failures, last_error, next_attempt, retry_after
    gamma.example   issued by `renew` with a reloader that fails: a pending deploy
    delta.example   issued, then revoked: revoked.json and the index's revoked_serial
    accounts/       the account registered on first use

Times, ports and serials are whatever the run produced; tests read them from the files.
"""

from __future__ import annotations

import datetime
import functools
import shutil
import sys
import tempfile
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

import services  # noqa: E402
from fixtures.ari import AriProxy, AriScenario  # noqa: E402
from fixtures.renewal import VALIDITY, _QuietHandler  # noqa: E402

from certman.config import Settings  # noqa: E402
from certman.keystore import FileKeystore  # noqa: E402
from certman.lifecycle import revoke  # noqa: E402
from certman.renewal.job import RenewReport, renew  # noqa: E402

TARGET = Path(__file__).resolve().parent / "keystore-v0.1"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with services.start_pebble(
            work / "pebble", config_overrides={"certificateValidityPeriod": int(VALIDITY.total_seconds())}
        ) as pebble:
            webroot = work / "webroot"
            (webroot / ".well-known" / "acme-challenge").mkdir(parents=True)
            server = ThreadingHTTPServer(
                ("127.0.0.1", pebble.http_port), functools.partial(_QuietHandler, directory=str(webroot))
            )
            threading.Thread(target=server.serve_forever, daemon=True).start()
            now = datetime.datetime.now(datetime.UTC)
            scenario = AriScenario(
                default_window=(now + datetime.timedelta(days=2), now + datetime.timedelta(days=3)),
                explanation_url="https://ca.example/why",
            )
            proxy = AriProxy(pebble, scenario)
            proxy.start()
            try:
                make(work / "ks", proxy, scenario, webroot, now)
            finally:
                proxy.stop()
                server.shutdown()
                server.server_close()


def make(root: Path, proxy: AriProxy, scenario: AriScenario, webroot: Path, now: datetime.datetime) -> None:
    keystore = FileKeystore(root)

    def settings(*tables: dict[str, object]) -> Settings:
        return Settings(
            server=proxy.directory_url,
            ca_bundle=str(proxy.pebble.ca_bundle),
            agree_tos=True,
            keystore=root,
            solver="webroot",
            webroot=str(webroot),
            timeout=30.0,
            certificates=tables,
        )

    failing_reload = {"name": "command", "argv": ["false"]}
    declared = settings(
        {"names": ["alpha.example", "www.alpha.example"]},
        {"names": ["beta.example"], "renew_before_days": 2},
        {"names": ["gamma.example"], "reloader": [failing_reload]},
        {"names": ["delta.example"], "key_type": "rsa2048"},
    )
    _check(renew(keystore, declared, jobs=1, now=now))
    # Every stored certificate from here on: the declarations did their job.
    stored = settings()
    _check(renew(keystore, stored, names=["alpha.example"], force=True, now=now + datetime.timedelta(minutes=1)))
    # Not forced: alpha's ARI window is fetched and kept in its state.
    renew(keystore, stored, names=["alpha.example"], now=now + datetime.timedelta(minutes=2))
    scenario.rate_limit_next_order = 3600
    renew(keystore, stored, names=["beta.example"], force=True, now=now + datetime.timedelta(minutes=3))
    revoke(keystore, "delta.example", reason="superseded")
    shutil.rmtree(root / "locks")
    if TARGET.exists():
        shutil.rmtree(TARGET)
    shutil.copytree(root, TARGET, symlinks=True)
    (TARGET / "README").write_text(
        "A keystore written by certman 0.1, made by ../make_golden.py against a throwaway Pebble.\n"
        "Its private keys (account, certificates) are test-only keys of that Pebble: never trust them.\n"
        "git keeps no 0600/0700 modes: tests copy this tree and restore the modes before use.\n"
    )


def _check(report: RenewReport) -> None:
    # gamma's failing reload is on purpose.
    failed = [r for r in report.failed if r.name != "gamma.example"]
    if failed:
        raise SystemExit(f"unexpected failures: {failed}")


if __name__ == "__main__":
    main()
