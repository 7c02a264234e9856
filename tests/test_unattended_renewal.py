"""Issue by hand, renew from the timer: the renewal works in cron's environment.

Each test issues as an operator would, from a working directory of its own with
relative paths and an environment of its own, then renews the way the timer runs
certman: ``env -i PATH=/usr/bin:/bin`` from ``/``, through the real ``certman``
program, against the session's Pebble (and a real nginx where one is reloaded).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import services
import tomli_w
from fixtures.proxies import nginx_server_block, serves

from certman.config import load_settings
from certman.deploy.served import Endpoint
from certman.keystore import FileKeystore
from certman.paths import find_program
from certman.renewal.declared import declared_specs

CERTMAN = str(Path(sys.executable).parent / "certman")
TIMER_ENV = ("/usr/bin/env", "-i", "PATH=/usr/bin:/bin")
RELOAD_SCRIPT = '#!/bin/sh\necho "$CERTMAN_NAME" >> "$(dirname "$0")/reloads.log"\n'


@pytest.fixture
def work(tmp_path: Path, pebble: services.Pebble) -> Path:
    """The operator's working directory: the CA bundle, a reload script, a bin/ on PATH."""
    work = tmp_path / "work"
    (work / "bin").mkdir(parents=True)
    shutil.copy(pebble.ca_bundle, work / "ca.pem")
    script = work / "reload.sh"
    script.write_text(RELOAD_SCRIPT)
    script.chmod(0o755)
    return work


def by_hand(work: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """certman run from ``work`` in the operator's shell: their own bin/ on PATH, and ``env``."""
    environ = {"PATH": f"{work / 'bin'}:{os.environ['PATH']}", "HOME": str(work), **env}
    return subprocess.run([CERTMAN, *args], cwd=work, env=environ, capture_output=True, text=True, timeout=120)


def from_timer(*args: str) -> subprocess.CompletedProcess[str]:
    """certman run as cron runs it: from /, with PATH=/usr/bin:/bin and nothing else."""
    return subprocess.run([*TIMER_ENV, CERTMAN, *args], cwd="/", capture_output=True, text=True, timeout=120)


def issue_flags(pebble: services.Pebble, name: str) -> list[str]:
    return [
        "issue",
        name,
        "--server",
        pebble.directory_url,
        "--agree-tos",
        "--email",
        "ops@example.com",
        "--http-address",
        "127.0.0.1",
        "--http-port",
        str(pebble.http_port),
    ]


def spec_of(keystore: Path, name: str) -> dict[str, object]:
    return tomllib.loads((keystore / "certs" / name / "spec.toml").read_text())


def serial_of(keystore: Path, name: str) -> str:
    entry = FileKeystore(keystore).read_index()[name]
    assert entry.serial
    return entry.serial


def renew_force_from_timer(keystore: Path, name: str, *config: str) -> str:
    """``renew --force NAME`` from the timer's environment; the renewed serial."""
    done = from_timer(*config, "--keystore", str(keystore), "renew", "--force", "--json", name)
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["certificates"]
    assert result["action"] == "renewed", result
    return str(result["serial"])


def test_a_relative_ca_bundle_is_recorded_absolute_and_the_timer_renews_with_it(pebble, work: Path):
    done = by_hand(work, *issue_flags(pebble, "rel-bundle.example"), "--ca-bundle", "ca.pem", "--keystore", "ks")
    assert done.returncode == 0, done.stderr
    keystore = work / "ks"
    assert spec_of(keystore, "rel-bundle.example")["ca_bundle"] == str(work / "ca.pem")
    first = serial_of(keystore, "rel-bundle.example")

    assert renew_force_from_timer(keystore, "rel-bundle.example") != first


def test_a_relative_keystore_in_the_config_file_is_the_same_keystore_from_any_directory(pebble, work: Path):
    (work / "etc").mkdir()
    config = work / "etc" / "certman.toml"
    config.write_text(tomli_w.dumps({"keystore": "../ks", "ca_bundle": "../ca.pem"}))
    done = by_hand(work, "--config", "etc/certman.toml", *issue_flags(pebble, "rel-keystore.example"))
    assert done.returncode == 0, done.stderr
    keystore = work / "ks"
    first = serial_of(keystore, "rel-keystore.example")

    done = from_timer("--config", str(config), "renew", "--force", "rel-keystore.example")
    assert done.returncode == 0, done.stderr
    assert serial_of(keystore, "rel-keystore.example") != first


def test_a_relative_reload_command_is_recorded_absolute_and_runs_from_the_timer(pebble, work: Path):
    keystore = work / "ks"
    flags = issue_flags(pebble, "rel-reload.example")
    done = by_hand(work, *flags, "--ca-bundle", "ca.pem", "--keystore", "ks", "--reload-cmd", '["./reload.sh"]')
    assert done.returncode == 0, done.stderr
    [table] = spec_of(keystore, "rel-reload.example")["reloader"]  # type: ignore[misc]
    assert table["argv"] == [str(work / "reload.sh")]

    renew_force_from_timer(keystore, "rel-reload.example")
    assert (work / "reloads.log").read_text().split() == ["rel-reload.example"] * 2


def test_a_bare_reload_program_is_recorded_as_found_on_the_operators_path(pebble, work: Path):
    program = work / "bin" / "reload-proxy"
    program.write_text(RELOAD_SCRIPT)
    program.chmod(0o755)
    flags = issue_flags(pebble, "bare-reload.example")
    done = by_hand(work, *flags, "--ca-bundle", "ca.pem", "--keystore", "ks", "--reload-cmd", '["reload-proxy"]')
    assert done.returncode == 0, done.stderr
    [table] = spec_of(work / "ks", "bare-reload.example")["reloader"]  # type: ignore[misc]
    assert table["argv"] == [str(program)]

    renew_force_from_timer(work / "ks", "bare-reload.example")
    assert (work / "bin" / "reloads.log").read_text().split() == ["bare-reload.example"] * 2


def test_a_reload_program_found_nowhere_is_exit_2_before_any_request_to_the_ca(work: Path):
    # Nothing listens on this port: an exit 2 here was decided before any request to the CA.
    server = f"https://127.0.0.1:{services.free_port()}/dir"
    argv = '["no-such-reload-program"]'
    done = by_hand(work, "issue", "x.example", "--server", server, "--keystore", "ks", "--reload-cmd", argv)
    assert done.returncode == 2, done.stderr
    assert "certman: " in done.stderr and "'no-such-reload-program' is not found on PATH" in done.stderr
    assert "hint: give its full path" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (work / "ks" / "certs" / "x.example").exists()


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_trust_from_the_environment_is_recorded_so_the_timer_renews_without_it(pebble, work: Path, variable: str):
    name = f"trust-{variable.lower().replace('_', '-')}.example"
    done = by_hand(work, *issue_flags(pebble, name), "--keystore", "ks", **{variable: "ca.pem"})
    assert done.returncode == 0, done.stderr
    assert spec_of(work / "ks", name)["ca_bundle"] == str(work / "ca.pem")
    first = serial_of(work / "ks", name)

    assert renew_force_from_timer(work / "ks", name) != first


def test_the_nginx_reloader_finds_nginx_in_sbin_under_crons_path():
    assert find_program("nginx", {"PATH": "/usr/bin:/bin"}) == shutil.which("nginx", path="/usr/sbin:/sbin")


def test_relative_paths_in_the_config_file_are_resolved_against_its_directory(work: Path, monkeypatch):
    etc = work / "etc"
    etc.mkdir()
    (etc / "certman.toml").write_text(
        tomli_w.dumps(
            {
                "keystore": "ks",
                "ca_bundle": "ca.pem",
                "webroot": "www",
                "solver": [{"name": "webroot", "path": "www-tables"}],
                "certificate": [
                    {
                        "names": ["a.example"],
                        "ca_bundle": "a-ca.pem",
                        "solver": [
                            {"name": "webroot", "path": "www-a", "match": ["a.example"]},
                            {"name": "dns-01", "provider": "rfc2136", "key_secret_file": "../tsig.key"},
                        ],
                        "reloader": [{"name": "command", "argv": ["./reload.sh", "x"]}],
                    }
                ],
            }
        )
    )
    # Read from elsewhere, as the timer reads it from /.
    monkeypatch.chdir("/")
    settings = load_settings(etc / "certman.toml", env={})
    assert (settings.keystore, settings.ca_bundle, settings.webroot) == (etc / "ks", f"{etc}/ca.pem", f"{etc}/www")
    assert settings.solvers[0]["path"] == f"{etc}/www-tables"
    [spec] = declared_specs(settings).values()
    assert spec.ca_bundle == f"{etc}/a-ca.pem"
    assert spec.solvers[0].options["path"] == f"{etc}/www-a"
    assert spec.solvers[1].options["key_secret_file"] == f"{work}/tsig.key"
    assert spec.reloaders[0]["argv"] == [f"{etc}/reload.sh", "x"]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_issue_by_hand_then_renew_from_cron_reloads_nginx_from_sbin(pebble, work: Path, start_nginx, tmp_path: Path):
    """The whole story of issue 11: a certificate declared in a certman.toml of relative
    paths, issued by hand with trust from REQUESTS_CA_BUNDLE and an extra PATH, renews
    from the timer's bare environment, and nginx (in /usr/sbin) serves the new serial."""
    name = "cron.example"
    plain_port, endpoint = services.free_port(), Endpoint("127.0.0.1", services.free_port())
    prefix = tmp_path / "nginx"  # start_nginx's prefix
    nginx = start_nginx(
        f"  server {{ listen 127.0.0.1:{plain_port}; return 200; }}\n  include {prefix}/tls*.conf;\n",
        lambda: _listening(plain_port),
    )
    reloader = {"name": "nginx", "prefix": str(nginx.prefix), "config": str(nginx.config)}
    certificate = {
        "names": [name],
        "solver": [{"name": "standalone", "address": "127.0.0.1", "port": pebble.http_port}],
        "reloader": [reloader, {"name": "command", "argv": ["./reload.sh"]}],
    }
    config = work / "certman.toml"
    config.write_text(
        tomli_w.dumps(
            {"keystore": "ks", "server": pebble.directory_url, "agree_tos": True, "certificate": [certificate]}
        )
    )

    done = by_hand(work, "--config", "certman.toml", "renew", REQUESTS_CA_BUNDLE="ca.pem")
    assert done.returncode == 0, done.stderr
    keystore = work / "ks"
    first = serial_of(keystore, name)
    # The operator now points nginx at the live certificate.
    (prefix / "tls.conf").write_text(nginx_server_block(endpoint.port, name, FileKeystore(keystore).live(name)))
    nginx_bin = find_program("nginx")
    assert nginx_bin is not None
    subprocess.run([nginx_bin, "-p", str(prefix), "-c", str(nginx.config), "-s", "reload"], check=True, timeout=30)
    services.wait_for(lambda: serves(endpoint, name, first), what="nginx serving the first certificate")

    # The timer's first run: nothing is due, and recording the paths is no change.
    done = from_timer("--config", str(config), "renew", "--json")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["certificates"]
    assert result["action"] == "skipped", result

    second = renew_force_from_timer(keystore, name, "--config", str(config))
    assert second != first
    services.wait_for(lambda: serves(endpoint, name, second), what="nginx serving the renewed certificate")
    assert (work / "reloads.log").read_text().split() == [name] * 2
