"""`--dry-run` of issue and renew: the real path against a staging twin, or validation and
deactivation without one; the keystore gains nothing but the dry run's own account.

Everything runs through the real ``certman`` program against real Pebbles: the session
Pebble as the "production" CA and a second Pebble as its twin (tests/fixtures/dry_run.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import services
import tomli_w
from fixtures.fault_proxy import FaultProxy
from fixtures.snapshot import Entry, snapshot

from certman.ca.accounts import AccountSettings, open_session
from certman.ca.twins import dry_run_account_id, twin_of
from certman.config import SERVER_ALIASES
from certman.keystore import FileKeystore, ca_id

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = ("/usr/bin/env", "-i", "PATH=/usr/bin:/bin")
RELOAD_SCRIPT = '#!/bin/sh\necho "$CERTMAN_NAME" >> "$(dirname "$0")/reloads.log"\n'


def by_hand(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    return subprocess.run([CERTMAN, *args], env=environ, capture_output=True, text=True, timeout=120)


def from_timer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TIMER_ENV, CERTMAN, *args], cwd="/", capture_output=True, text=True, timeout=120)


def issue_flags(server: str, bundle: Path, http_port: int, *extra: str) -> list[str]:
    return [
        "--server",
        server,
        "--ca-bundle",
        str(bundle),
        "--agree-tos",
        "--email",
        "ops@example.com",
        "--http-address",
        "127.0.0.1",
        "--http-port",
        str(http_port),
        *extra,
    ]


def changed(before: dict[str, Entry], after: dict[str, Entry]) -> set[str]:
    return {p for p in set(before) | set(after) if before.get(p) != after.get(p)}


def dry_run_account_files(directory_url: str) -> set[str]:
    """The dry run's own account, and accounts/ that gained it (a new entry: a new mtime)."""
    account = f"accounts/{dry_run_account_id(directory_url)}"
    return {"accounts", account, f"{account}/key.pem", f"{account}/account.json"}


def test_issue_dry_run_finalizes_at_the_twin_and_stores_only_its_own_account(
    tmp_path: Path, pebble: services.Pebble, twin_pebble: services.Pebble, both_bundles: Path
) -> None:
    keystore = tmp_path / "ks"
    flags = issue_flags(pebble.directory_url, both_bundles, pebble.http_port)
    real = by_hand("--keystore", str(keystore), "issue", "twin.example", *flags)
    assert real.returncode == 0, real.stderr
    before = snapshot(keystore, mtimes=True)

    done = by_hand(
        "--keystore",
        str(keystore),
        "issue",
        "twin.example",
        *flags,
        "--dry-run",
        "--dry-run-server",
        twin_pebble.directory_url,
        "--json",
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["dry_run"], result["finalized"], result["rehearsed_at"]) == (True, True, twin_pebble.directory_url)
    # The twin issued it, the production CA never saw it, and nobody stored it.
    assert twin_pebble.cert_status(result["serial"])["Status"] == "Valid"
    assert pebble.cert_status(result["serial"]) is None
    assert changed(before, snapshot(keystore, mtimes=True)) == dry_run_account_files(twin_pebble.directory_url)
    # The real account is the one the real issue registered, untouched.
    real_account = FileKeystore(keystore).load_account(ca_id(pebble.directory_url))
    twin_account = FileKeystore(keystore).load_account(dry_run_account_id(twin_pebble.directory_url))
    assert real_account is not None and twin_account is not None
    assert real_account[1].uri != twin_account[1].uri and real_account[0] != twin_account[0]

    human = by_hand(
        "--keystore",
        str(keystore),
        "issue",
        "twin.example",
        *flags,
        "--dry-run-server",
        twin_pebble.directory_url,
        "--dry-run",
    )
    assert human.returncode == 0, human.stderr
    assert "dry run: validated and finalized at the staging twin" in human.stdout
    assert "nothing stored, nothing reloaded" in human.stdout


def test_dry_run_without_a_twin_validates_then_deactivates_and_never_finalizes(
    tmp_path: Path, pebble: services.Pebble, fault_proxy: FaultProxy
) -> None:
    keystore = tmp_path / "ks"
    flags = issue_flags(fault_proxy.directory_url, pebble.ca_bundle, pebble.http_port)

    done = by_hand(
        "--keystore", str(keystore), "issue", "a.notwin.example", "b.notwin.example", *flags, "--dry-run", "--json"
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["dry_run"], result["finalized"], result["deactivated_authorizations"]) == (True, False, 2)
    assert fault_proxy.count("POST", r"^/finalize-order/") == 0
    assert fault_proxy.count("POST", r"^/order-plz$", succeeded=True) == 1
    # Every authorization of the order ends deactivated, as the CA reports it to the account.
    authorizations = sorted({s.path for s in fault_proxy.seen if s.path.startswith("/authZ/")})
    assert len(authorizations) == 2
    store = FileKeystore(keystore)
    session = open_session(
        fault_proxy.directory_url,
        store,
        AccountSettings(),
        ca_bundle=str(pebble.ca_bundle),
        timeout=30.0,
        account_id=dry_run_account_id(fault_proxy.directory_url),
    )
    statuses = {session.fetch_authorization(fault_proxy.url + path).body.status.name for path in authorizations}
    assert statuses == {"deactivated"}
    # No real account was registered: only the dry run's own.
    assert store.account_cas() == [dry_run_account_id(fault_proxy.directory_url)]
    assert not (keystore / "certs").exists() and not (keystore / "live").exists()
    assert "did not finalize" in result["summary"]


def test_a_failing_validation_in_a_dry_run_exits_as_the_real_run_does(
    tmp_path: Path, pebble: services.Pebble, twin_pebble: services.Pebble, both_bundles: Path
) -> None:
    keystore = tmp_path / "ks"
    # Nothing answers on this port, so the CA's validation fails (exit 4) for either run.
    flags = issue_flags(pebble.directory_url, both_bundles, services.free_port(), "--timeout", "30")

    rehearsed = by_hand(
        "--keystore",
        str(keystore),
        "issue",
        "unreachable.example",
        *flags,
        "--dry-run",
        "--dry-run-server",
        twin_pebble.directory_url,
    )
    real = by_hand("--keystore", str(keystore), "issue", "unreachable.example", *flags)

    assert (rehearsed.returncode, real.returncode) == (4, 4), rehearsed.stderr
    assert "certman: " in rehearsed.stderr and "hint: " in rehearsed.stderr
    assert "Traceback" not in rehearsed.stderr


def test_a_bad_dry_run_server_is_refused_before_any_request(tmp_path: Path, pebble: services.Pebble) -> None:
    keystore = tmp_path / "ks"
    flags = issue_flags(pebble.directory_url, pebble.ca_bundle, pebble.http_port)

    done = by_hand(
        "--keystore", str(keystore), "issue", "x.example", *flags, "--dry-run", "--dry-run-server", "http://plain/dir"
    )

    assert done.returncode == 2
    assert "is not an https:// directory URL" in done.stderr and "hint: " in done.stderr
    assert not (keystore / "accounts").exists()


def test_renew_dry_run_from_the_timer_rehearses_every_certificate_and_reloads_nothing(
    tmp_path: Path, pebble: services.Pebble, twin_pebble: services.Pebble, both_bundles: Path
) -> None:
    keystore = tmp_path / "ks"
    script = tmp_path / "reload.sh"
    script.write_text(RELOAD_SCRIPT)
    script.chmod(0o755)
    names = ["one.dry.example", "two.dry.example", "three.dry.example"]
    config = tmp_path / "certman.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "keystore": str(keystore),
                "server": pebble.directory_url,
                "ca_bundle": str(both_bundles),
                "agree_tos": True,
                "http_address": "127.0.0.1",
                "http_port": pebble.http_port,
                "dry_run_server": twin_pebble.directory_url,
                "certificate": [
                    {"names": [n], "reloader": [{"name": "command", "argv": [str(script)]}]} for n in names
                ],
            }
        )
    )
    first = from_timer("--config", str(config), "renew", "--jobs", "3")
    assert first.returncode == 0, first.stderr
    (tmp_path / "reloads.log").unlink()
    before = snapshot(keystore, mtimes=True)

    done = from_timer("--config", str(config), "renew", "--dry-run", "--jobs", "3", "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is True
    # Not due (just issued), rehearsed all the same, as certbot's renew --dry-run does.
    assert [(c["name"], c["action"], c["dry_run"]) for c in report["certificates"]] == [
        (n, "rehearsed", True) for n in sorted(names)
    ]
    assert all("staging twin" in c["reason"] for c in report["certificates"])
    assert not (tmp_path / "reloads.log").exists()
    assert changed(before, snapshot(keystore, mtimes=True)) == dry_run_account_files(twin_pebble.directory_url)

    human = from_timer("--config", str(config), "renew", "--dry-run", "one.dry.example")
    assert human.returncode == 0, human.stderr
    assert "dry run" in human.stdout and "rehearsed" in human.stdout


def test_renew_dry_run_exits_7_when_a_rehearsal_fails_and_records_nothing(
    tmp_path: Path, pebble: services.Pebble, twin_pebble: services.Pebble, both_bundles: Path
) -> None:
    keystore = tmp_path / "ks"
    config = tmp_path / "certman.toml"
    settings = {
        "keystore": str(keystore),
        "server": pebble.directory_url,
        "ca_bundle": str(both_bundles),
        "agree_tos": True,
        "http_address": "127.0.0.1",
        "http_port": pebble.http_port,
        "certificate": [{"names": ["broken.dry.example"], "dry_run_server": twin_pebble.directory_url}],
    }
    config.write_text(tomli_w.dumps(settings))
    assert from_timer("--config", str(config), "renew").returncode == 0
    before = snapshot(keystore, mtimes=True)
    # The per-certificate dry_run_server names a twin nobody listens on: the CA is unreachable.
    settings["certificate"] = [
        {"names": ["broken.dry.example"], "dry_run_server": f"https://127.0.0.1:{services.free_port()}/dir"}
    ]
    config.write_text(tomli_w.dumps(settings))

    done = from_timer("--config", str(config), "renew", "--dry-run", "--json", "--timeout", "5")

    assert done.returncode == 7, done.stderr
    [result] = json.loads(done.stdout)["certificates"]
    assert (result["action"], result["dry_run"]) == ("failed", True)
    assert "certman: broken.dry.example:" in done.stderr
    # No failure, backoff or state recorded: a dry run changes nothing.
    assert changed(before, snapshot(keystore, mtimes=True)) == set()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _workers(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def test_renew_dry_run_tests_the_nginx_configuration_and_never_reloads_it(
    tmp_path: Path, pebble: services.Pebble, twin_pebble: services.Pebble, both_bundles: Path, start_nginx
) -> None:
    plain_port = services.free_port()
    prefix = tmp_path / "nginx"  # start_nginx's prefix
    nginx = start_nginx(
        f"  server {{ listen 127.0.0.1:{plain_port}; return 200; }}\n  include {prefix}/extra*.conf;\n",
        lambda: _listening(plain_port),
    )
    keystore = tmp_path / "ks"
    config = tmp_path / "certman.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "keystore": str(keystore),
                "server": pebble.directory_url,
                "ca_bundle": str(both_bundles),
                "agree_tos": True,
                "http_address": "127.0.0.1",
                "http_port": pebble.http_port,
                "dry_run_server": twin_pebble.directory_url,
                "certificate": [
                    {"names": ["nginx.dry.example"], "reloader": [{"name": "nginx", **nginx.reloader_options}]}
                ],
            }
        )
    )
    assert from_timer("--config", str(config), "renew").returncode == 0
    assert nginx.service.process is not None
    master = nginx.service.process.pid
    # The real renewal reloaded nginx: wait for the old worker to finish leaving.
    services.wait_for(lambda: len(_workers(master)) == 1, what="one nginx worker")
    workers = _workers(master)

    done = from_timer("--config", str(config), "renew", "--dry-run", "--json")

    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["certificates"]
    assert result["action"] == "rehearsed"
    assert "reloader nginx: configuration test passed; not reloaded" in result["reason"]
    assert _workers(master) == workers  # a reload would have started a new worker

    # A configuration nginx -t rejects fails the dry run as it fails the real deploy: exit 7.
    (prefix / "extra.conf").write_text("this is not nginx;\n")
    broken = from_timer("--config", str(config), "renew", "--dry-run", "--json")
    real = from_timer("--config", str(config), "renew", "--force", "--json")

    assert (broken.returncode, real.returncode) == (7, 7), broken.stderr
    [rehearsed] = json.loads(broken.stdout)["certificates"]
    [renewed] = json.loads(real.stdout)["certificates"]
    assert "nginx rejected its configuration" in rehearsed["error"]
    assert "nginx rejected its configuration" in renewed["error"]
    assert _workers(master) == workers


def test_the_twin_table_and_dry_run_server() -> None:
    production, staging = SERVER_ALIASES["letsencrypt"], SERVER_ALIASES["letsencrypt-staging"]

    assert twin_of(production) == staging
    assert twin_of(staging) == staging
    assert twin_of("https://ca.example/dir") is None
    # The setting wins over the table, and takes an alias.
    assert twin_of(production, "https://other.example/dir") == "https://other.example/dir"
    assert twin_of("https://ca.example/dir", "letsencrypt-staging") == staging
    # A dry-run account id is never a real CA's: ca_id never yields "+".
    assert dry_run_account_id(production) == ca_id(production) + "+dry-run"


def test_dry_run_and_check_together_are_a_usage_error(certman) -> None:
    done = certman("renew", "--dry-run", "--check")

    assert done.exit_code == 2
    assert "--dry-run and --check do not go together" in done.output


def test_a_dry_run_validates_through_the_nginx_that_holds_the_http_port(
    tmp_path: Path, pebble: services.Pebble, twin_pebble: services.Pebble, both_bundles: Path, start_nginx
) -> None:
    # nginx holds the port both CAs validate HTTP-01 on and forwards the challenges to the solver.
    solver_port = services.free_port()
    start_nginx(
        f"  server {{\n    listen 127.0.0.1:{pebble.http_port};\n"
        f"    location /.well-known/acme-challenge/ {{ proxy_pass http://127.0.0.1:{solver_port}; }}\n"
        "    location / { return 301 https://$host$request_uri; }\n  }\n",
        lambda: _listening(pebble.http_port),
    )
    keystore = tmp_path / "ks"
    flags = issue_flags(pebble.directory_url, both_bundles, solver_port)

    done = by_hand(
        "--keystore", str(keystore), "issue", "proxied.dry.example", *flags,
        "--dry-run", "--dry-run-server", twin_pebble.directory_url, "--json",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["finalized"], result["rehearsed_at"]) == (True, twin_pebble.directory_url)
    assert twin_pebble.cert_status(result["serial"])["Status"] == "Valid"
    assert not (keystore / "certs").exists()
