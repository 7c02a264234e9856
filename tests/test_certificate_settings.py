"""A certificate's settings: one record, changed by issue, reconfigure or certman.toml, never by hand.

Each test drives the real ``certman`` program against the session's Pebble: by hand
from the operator's directory, and for the renewals as the timer runs it (``env -i
PATH=/usr/bin:/bin`` from ``/``). "No re-issue" is counted in stored versions: one
per certificate ordered.
"""

from __future__ import annotations

import json
import socket
import tomllib
from pathlib import Path
from typing import Any

import services
import tomli_w
from fixtures.operator import Operator
from fixtures.proxies import nginx_server_block, serves
from fixtures.snapshot import snapshot

from certman.deploy.served import Endpoint
from certman.keystore import FileKeystore

RECORD_RELOAD = '#!/bin/sh\necho "$CERTMAN_NAME $1" >> "$(dirname "$0")/reloads.log"\n'


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _json(done: Any) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    printed: dict[str, Any] = json.loads(done.stdout)
    return printed


def _reload_script(operator: Operator) -> Path:
    script = operator.work / "reload.sh"
    script.write_text(RECORD_RELOAD)
    script.chmod(0o755)
    return script


def _reloads(operator: Operator) -> list[str]:
    log = operator.work / "reloads.log"
    return log.read_text().splitlines() if log.exists() else []


def _declare(operator: Operator, *certificates: dict[str, Any]) -> Path:
    """A certman.toml pointing at Pebble that declares ``certificates``; its path."""
    pebble = operator.pebble
    solver = {"name": "standalone", "address": "127.0.0.1", "port": pebble.http_port}
    config = operator.work / "certman.toml"
    settings = {"server": pebble.directory_url, "ca_bundle": str(pebble.ca_bundle), "agree_tos": True}
    tables = [{"solver": [solver], **c} for c in certificates]
    config.write_text(tomli_w.dumps({**settings, "email": "ops@example.com", "certificate": tables}))
    return config


def _renew_from_timer(operator: Operator, config: Path, name: str) -> dict[str, Any]:
    [result] = _json(operator.from_timer("--config", str(config), "renew", "--json", name))["certificates"]
    return dict(result)


def test_issue_again_keeps_the_nginx_reloader_that_reconfigure_added(operator: Operator, start_nginx: Any) -> None:
    name = "keep-reloader.example"
    first = operator.issue(name)["serial"]
    plain, endpoint = services.free_port(), Endpoint("127.0.0.1", services.free_port())
    live = FileKeystore(operator.keystore).live(name)
    nginx = start_nginx(
        f"  server {{ listen 127.0.0.1:{plain}; return 200; }}\n{nginx_server_block(endpoint.port, name, live)}",
        lambda: _listening(plain),
    )
    options = [f"--reloader-option={k}={v}" for k, v in nginx.reloader_options.items()]

    added = _json(
        operator.by_hand(
            "reconfigure", name, "--reloader", "nginx", *options, f"--reloader-option=verify={endpoint}", "--json"
        )
    )
    assert (added["changed"], added["reissue"], added["ordered"]) == (["reloaders"], False, False)
    assert added["deploy"]["ok"] and added["deploy"]["checks"][0]["served_serial"] == first

    again = operator.issue(name)  # the operator's first command, run again
    assert again["changes"]["changed"] == [] and again["deploy"]["ok"]
    assert 'name = "nginx"' in operator.spec(name)
    services.wait_for(lambda: serves(endpoint, name, again["serial"]), what="nginx serving the new certificate")
    assert operator.versions(name) == ["000001", "000002"]


def test_reconfigure_moves_the_solver_behind_nginx_and_the_timer_renews_with_it(
    operator: Operator, start_nginx: Any
) -> None:
    name = "moved-solver.example"
    operator.issue(name)
    # A new account holds no valid authorization Pebble could reuse: each renewal needs the solver.
    assert operator.by_hand("account", "register", "--new", *operator.ca_flags()).returncode == 0
    held, behind = operator.pebble.http_port, services.free_port()
    start_nginx(
        f"  server {{ listen 127.0.0.1:{held};\n"
        f"    location /.well-known/acme-challenge/ {{ proxy_pass http://127.0.0.1:{behind}; }} }}\n",
        lambda: _listening(held),
    )
    failed = operator.from_timer("renew", "--force", "--json", name)
    assert failed.returncode == 7 and "already in use" in failed.stdout
    assert "`certman reconfigure NAME ...`" in json.loads(failed.stdout)["certificates"][0]["hint"]
    assert _json(operator.from_timer("show", "--json", name))["state"]["consecutive_failures"] == 1

    moved = _json(operator.by_hand("reconfigure", name, "--http-port", str(behind), "--json"))
    assert (moved["changed"], moved["reissue"], moved["backoff_cleared"]) == (["solvers"], False, True)
    assert _json(operator.from_timer("show", "--json", name))["state"]["consecutive_failures"] == 0
    assert operator.versions(name) == ["000001"]
    [solver] = tomllib.loads(operator.spec(name))["solver"]
    assert (solver["name"], solver["address"], solver["port"]) == ("standalone", "127.0.0.1", behind)

    [renewed] = _json(operator.from_timer("renew", "--force", "--json", name))["certificates"]
    assert renewed["action"] == "renewed", renewed
    assert operator.versions(name) == ["000001", "000002"]


def test_reordering_the_names_of_a_declaration_orders_nothing(operator: Operator) -> None:
    name = "order.example"
    config = _declare(operator, {"name": name, "names": [name, "www.order.example"]})
    assert _renew_from_timer(operator, config, name)["action"] == "issued"

    _declare(operator, {"name": name, "names": ["www.order.example", name]})
    result = _renew_from_timer(operator, config, name)

    assert result["action"] == "skipped", result
    assert operator.versions(name) == ["000001"]
    [explained] = _json(operator.from_timer("--config", str(config), "explain", "--json"))["certificates"]
    assert explained["declaration"] is None


def test_changing_only_the_reload_command_redeploys_without_an_order(operator: Operator) -> None:
    name = "reload-change.example"
    script = str(_reload_script(operator))
    config = _declare(operator, {"names": [name], "reloader": [{"name": "command", "argv": [script, "A"]}]})
    assert _renew_from_timer(operator, config, name)["action"] == "issued"

    _declare(operator, {"names": [name], "reloader": [{"name": "command", "argv": [script, "B"]}]})
    [explained] = _json(operator.from_timer("--config", str(config), "explain", "--json"))["certificates"]
    shown = _json(operator.from_timer("--config", str(config), "show", "--json", name))
    result = _renew_from_timer(operator, config, name)

    summary = "record updated: reloaders; no re-issue"
    assert explained["declaration"]["summary"] == summary and explained["action"] == "deploy"
    assert shown["next_renewal"]["declaration"]["summary"] == summary
    assert result["action"] == "deployed", result
    assert operator.versions(name) == ["000001"]
    assert _reloads(operator) == [f"{name} A", f"{name} B"]
    assert tomllib.loads(operator.spec(name))["reloader"][0]["argv"] == [script, "B"]
    assert _renew_from_timer(operator, config, name)["action"] == "skipped"


def test_explain_and_show_say_which_changed_field_re_issues(operator: Operator) -> None:
    name = "grow.example"
    config = _declare(operator, {"names": [name]})
    assert _renew_from_timer(operator, config, name)["action"] == "issued"

    _declare(operator, {"names": [name, "b.grow.example"], "renew_before_days": 20})
    [explained] = _json(operator.from_timer("--config", str(config), "explain", "--json"))["certificates"]
    shown = operator.from_timer("--config", str(config), "show", name)

    decided = "re-issue: identifiers changed (added b.grow.example)"
    assert explained["declaration"]["summary"] == decided
    assert explained["declaration"]["changed"] == ["identifiers", "renew_before_days"]
    assert "identifiers changed (added b.grow.example), so a new certificate is ordered" in explained["explanation"][0]
    assert f"declared: {decided}" in shown.stdout
    assert operator.versions(name) == ["000001"]


def test_issue_and_reconfigure_refuse_a_name_declared_in_certman_toml(operator: Operator) -> None:
    name = "owned.example"
    config = _declare(operator, {"names": [name]})

    for args in (["issue", name, *operator.ca_flags()], ["reconfigure", name, "--http-port", "8402"]):
        done = operator.by_hand("--config", str(config), *args)
        assert done.returncode == 2, done.stderr
        assert f"certman: certificate {name} is declared in {config}" in done.stderr
        assert f"hint: edit that table in {config}" in done.stderr
    assert not (operator.keystore / "certs").exists()


def test_reconfigure_with_a_bad_setting_writes_nothing(operator: Operator) -> None:
    name = "bad-settings.example"
    operator.issue(name)
    before = snapshot(operator.keystore)

    for bad in (
        ["--reloader", "nginxx"],
        ["--solver", "standalon"],
        ["--reloader", "nginx", "--reloader-option", "prot=8402"],
        ["--reload-cmd", '["no-such-program-anywhere"]'],
        ["--remove-reloader", "nginx"],
        ["--reloader-option", "verify=127.0.0.1:443"],
        ["--renew-before-days", "-1"],
    ):
        done = operator.by_hand("reconfigure", name, *bad)
        assert done.returncode == 2, (bad, done.stderr)
        assert done.stderr.startswith("certman: ") and "\nhint: " in done.stderr, (bad, done.stderr)
        assert "Traceback" not in done.stderr
    assert snapshot(operator.keystore) == before


def test_issue_again_keeps_every_stored_setting_it_was_not_given(operator: Operator) -> None:
    name = "kept.example"
    script = str(_reload_script(operator))
    operator.issue(name, "--reload-cmd", json.dumps([script, "x"]), "--renew-before-days", "20")

    again = operator.by_hand("issue", name, *operator.ca_flags(), "--key-type", "rsa2048")

    assert again.returncode == 0, again.stderr
    assert "settings: key_type changed\n  key_type: ecdsa-p256 -> rsa2048\n" in again.stdout
    spec = tomllib.loads(operator.spec(name))
    assert spec["reloader"] == [{"name": "command", "argv": [script, "x"]}]
    assert (spec["renew_before_days"], spec["key_type"]) == (20.0, "rsa2048")
    assert spec["solver"] == [{"name": "standalone", "address": "127.0.0.1", "port": operator.pebble.http_port}]
    assert _reloads(operator) == [f"{name} x"] * 2


def test_reconfigure_of_a_field_that_needs_a_new_certificate_orders_nothing(operator: Operator) -> None:
    name = "later.example"
    operator.issue(name)

    done = operator.by_hand("reconfigure", name, "--key-type", "rsa2048")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{name}: re-issue: key_type: ecdsa-p256 -> rsa2048\n")
    assert f"no certificate ordered: the next renewal gets one with these settings (`certman renew --force {name}`" in (
        done.stdout
    )
    assert operator.versions(name) == ["000001"]
    assert tomllib.loads(operator.spec(name))["key_type"] == "rsa2048"


def test_issue_again_replaces_an_unreadable_record(operator: Operator) -> None:
    name = "damaged.example"
    operator.issue(name)
    (operator.keystore / "certs" / name / "spec.toml").write_text("names = [")

    again = operator.issue(name)

    assert again["changes"] is None and again["version"] == "000002"
    assert tomllib.loads(operator.spec(name))["identifiers"] == [name]


def test_reconfigure_dry_run_rehearses_the_new_settings_and_records_nothing(operator: Operator) -> None:
    name = "rehearsed.example"
    operator.issue(name)
    spec = operator.spec(name)
    nowhere = str(services.free_port())

    broken = operator.by_hand("reconfigure", name, "--http-port", nowhere, "--dry-run")
    fine = operator.by_hand("reconfigure", name, "--renew-before-days", "20", "--dry-run", "--json")

    assert broken.returncode == 4, broken.stderr  # the CA could not reach the moved solver, as a renewal would find
    assert _json(fine)["recorded"] is False and _json(fine)["changed"] == ["renew_before_days"]
    assert _json(fine)["rehearsal"]["dry_run"] is True
    assert operator.spec(name) == spec and operator.versions(name) == ["000001"]
