"""certman doctor fails what issue and renew would reject, with the same code, and goes on checking.

Each test gives the input of issue 11's list: a misspelt server alias, solver name or
solver option; an invalid config with CERTMAN_KEYSTORE set; relative paths; programs
outside the timer's PATH; a certificate's solver port held by nginx.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
import services
from click.testing import Result
from fixtures.cli import CertmanRun, issue_flags
from fixtures.lifecycle import standalone_spec
from fixtures.proxies import Nginx

from certman.config import CertSpec, SolverSpec
from certman.keystore import FileKeystore
from certman.paths import TIMER_PATH

CERTMAN = str(Path(sys.executable).parent / "certman")
SOLVERS = "dns-01, standalone, tls-alpn-01, webroot"
RELOADERS = "caddy, command, haproxy, nginx, traefik"


def fail_lines(result: Result | subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("FAIL")]


def ca_flags(pebble: services.Pebble) -> list[str]:
    return ["--server", pebble.directory_url, "--ca-bundle", str(pebble.ca_bundle)]


def free_port_flags() -> list[str]:
    return ["--http-address", "127.0.0.1", "--http-port", str(services.free_port())]


def store(keystore: Path, spec: CertSpec) -> None:
    """Record ``spec`` in the keystore as an earlier `certman issue` would have."""
    store = FileKeystore(keystore)
    (keystore / "certs" / spec.name).mkdir(mode=0o700, parents=True)
    with store.lock_cert(spec.name):
        store.write_spec(spec)


def timer_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``certman ARGS`` as the timer runs it: from /, with a bare environment."""
    return subprocess.run(
        [CERTMAN, *args],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- what issue rejects -----------------------------------------------------------------------


def test_a_misspelt_server_alias_is_a_fail_line_naming_it_and_the_aliases(certman: CertmanRun) -> None:
    issued = certman("issue", "--server", "letsencrypt-stagin", "--agree-tos", "typo.example")
    doctor = certman("doctor", "--server", "letsencrypt-stagin", *free_port_flags())

    assert issued.exit_code == 2 and "'letsencrypt-stagin'" in issued.stderr
    assert doctor.exit_code == 1
    assert fail_lines(doctor) == [
        "FAIL  CA letsencrypt-stagin: ACME server 'letsencrypt-stagin' is not an https:// directory URL "
        "(hint: use an https URL or one of: letsencrypt, letsencrypt-staging)"
    ]
    assert [line.split(":")[0] for line in doctor.stdout.splitlines()] == [
        "ok    config",
        "ok    keystore",
        "FAIL  CA letsencrypt-stagin",
        "ok    standalone port",
        "ok    log",  # issue 14 item 5: where the run log is
    ]


@pytest.mark.parametrize("where", ["flag", "config", "[[solver]]"])
def test_a_misspelt_solver_name_is_a_fail_line_naming_it_and_the_solvers(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path, where: str
) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(
        {"flag": "", "config": 'solver = "standalon"\n', "[[solver]]": '[[solver]]\nname = "standalon"\n'}[where]
    )
    solver = ["--solver", "standalon"] if where == "flag" else []

    issued = certman("--config", str(config), "issue", *issue_flags(pebble), *solver, "typo.example")
    doctor = certman("--config", str(config), "doctor", *ca_flags(pebble), *solver, *free_port_flags())

    assert issued.exit_code == 2 and "unknown solver 'standalon'" in issued.stderr
    assert doctor.exit_code == 1
    assert fail_lines(doctor) == [
        f"FAIL  solver standalon: unknown solver 'standalon' (hint: choose one of: {SOLVERS})"
    ]


def test_the_solver_setting_of_certman_toml_is_the_run_wide_solver(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path
) -> None:
    config = tmp_path / "certman.toml"
    config.write_text('solver = "standalone"\nhttp_address = "127.0.0.1"\n')

    doctor = certman("--config", str(config), "doctor", *ca_flags(pebble), "--http-port", str(services.free_port()))

    assert doctor.exit_code == 0, doctor.stdout


@pytest.mark.parametrize(
    ("solver", "expected"),
    [
        ('name = "standalon"', f"solver standalon: unknown solver 'standalon' (hint: choose one of: {SOLVERS})"),
        (
            'name = "standalone"\nprot = 8402',
            "solver standalone: standalone solver: unknown option(s) prot "
            "(hint: did you mean port for prot? "
            "known settings: address, connection_timeout, port (see `certman plugins`))",
        ),
    ],
)
def test_a_declared_certificate_that_renew_rejects_is_a_fail_line(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path, solver: str, expected: str
) -> None:
    config = tmp_path / "certman.toml"
    config.write_text(
        f'server = "{pebble.directory_url}"\nca_bundle = "{pebble.ca_bundle}"\n'
        f'[[certificate]]\nnames = ["typo.example"]\n[[certificate.solver]]\n{solver}\n'
    )

    renewed = certman("--config", str(config), "renew")
    doctor = certman("--config", str(config), "doctor", *free_port_flags())

    assert renewed.exit_code != 0 and expected.split(": ", 1)[1].split(" (")[0] in renewed.stderr
    assert doctor.exit_code == 1
    assert fail_lines(doctor) == [f"FAIL  {expected}"]


def test_a_misspelt_reloader_name_or_option_is_a_fail_line(certman: CertmanRun, pebble: services.Pebble) -> None:
    for name, reloader in [
        ("a.example", {"name": "ngnix"}),
        ("b.example", {"name": "command", "argv": ["/bin/true"], "tiemout": 5}),
    ]:
        store(certman.keystore, standalone_spec(pebble, name, reloaders=(reloader,)))

    doctor = certman("doctor", *ca_flags(pebble), *free_port_flags())

    assert doctor.exit_code == 1
    assert fail_lines(doctor) == [
        f"FAIL  reloader ngnix: unknown reloader 'ngnix' (hint: choose one of: {RELOADERS})",
        "FAIL  reloader command: command reloader: unknown option(s) tiemout "
        "(hint: did you mean timeout for tiemout? known settings: argv, timeout (see `certman plugins`))",
    ]


# --- the keystore ----------------------------------------------------------------------------


def test_an_invalid_config_still_checks_the_keystore_of_certman_keystore(tmp_path: Path) -> None:
    config = tmp_path / "certman.toml"
    config.write_text("server = [unclosed\n")
    keystore = tmp_path / "ks"

    doctor = timer_run("doctor", env={"CERTMAN_CONFIG": str(config), "CERTMAN_KEYSTORE": str(keystore)})

    keystore_line = next(line for line in doctor.stdout.splitlines() if " keystore: " in line)
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    assert keystore_line == f"ok    keystore: {keystore} does not exist yet; the first issue creates it (0700)"


def test_an_invalid_config_still_checks_its_own_keystore(certman: CertmanRun, tmp_path: Path) -> None:
    config = tmp_path / "certman.toml"
    config.write_text('keystore = "ks"\nsolver_typo = 1\n')

    doctor = certman(
        "--config", str(config), "doctor", "--server", "https://127.0.0.1:1/directory", env={"CERTMAN_KEYSTORE": None}
    )

    assert f"ok    keystore: {tmp_path / 'ks'} does not exist yet" in doctor.stdout


# --- paths and programs, as the timer resolves them -------------------------------------------


def test_recorded_relative_paths_fail_each_naming_the_path(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path
) -> None:
    (tmp_path / "www").mkdir()
    store(certman.keystore, replace(standalone_spec(pebble, "bundle.example"), ca_bundle="ca.pem"))
    store(
        certman.keystore,
        replace(standalone_spec(pebble, "web.example"), solvers=(SolverSpec("webroot", {"path": "www"}),)),
    )

    doctor = certman("doctor", *ca_flags(pebble), *free_port_flags())

    assert fail_lines(doctor) == [
        f"FAIL  CA {pebble.directory_url}: certificate bundle.example: CA bundle ca.pem is a relative path, "
        "which a renewal started from / would not find (hint: record the absolute path of ca.pem)",
        "FAIL  solver webroot: path = www is a relative path, which a renewal started from / would not find "
        "(for web.example) (hint: record the absolute path of www)",
    ]


def test_a_relative_or_world_readable_secret_file_fails_naming_it(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = tmp_path / "tsig.key", tmp_path / "public.key"
    for path, mode in ((private, 0o600), (public, 0o644)):
        path.write_text("c2VjcmV0\n")
        path.chmod(mode)
    for name, secret in (("dns.example", "tsig.key"), ("open.example", str(public))):
        options = {"provider": "rfc2136", "server": "127.0.0.1", "key_name": "k.", "key_secret_file": secret}
        store(certman.keystore, replace(standalone_spec(pebble, name), solvers=(SolverSpec("dns-01", options),)))

    monkeypatch.chdir(tmp_path)  # where the relative file is found: by hand it works
    doctor = certman("doctor", *ca_flags(pebble), *free_port_flags())

    assert fail_lines(doctor) == [
        "FAIL  solver dns-01: key_secret_file = tsig.key is a relative path, which a renewal "
        "started from / would not find (for dns.example) (hint: record the absolute path of tsig.key)",
        f"FAIL  solver dns-01: option key_secret_file: {public} is readable by every user (hint: chmod o-r {public})",
    ]


def test_a_stored_spec_renew_cannot_read_is_a_fail_line(certman: CertmanRun, pebble: services.Pebble) -> None:
    store(certman.keystore, standalone_spec(pebble, "broken.example"))
    spec = certman.keystore / "certs" / "broken.example" / "spec.toml"
    spec.write_text(spec.read_text().replace("identifiers", "identifers"))

    doctor = certman("doctor", *ca_flags(pebble), *free_port_flags())

    assert fail_lines(doctor) == [f"FAIL  certificate broken.example: {spec}: missing or malformed field 'identifiers'"]


def test_programs_are_found_under_the_timers_path_or_fail_naming_them(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "reload.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    hook = tmp_path / "bin" / "dns-hook"
    hook.parent.mkdir()
    hook.write_text("#!/bin/sh\n")
    hook.chmod(0o755)
    reloaders: Sequence[dict[str, object]] = (
        {"name": "command", "argv": ["./reload.sh"]},
        {"name": "command", "argv": ["certman-no-such-program"]},
        {"name": "nginx"},
        {"name": "command", "argv": ["dns-hook"]},
    )
    for index, reloader in enumerate(reloaders):
        store(certman.keystore, standalone_spec(pebble, f"r{index}.example", reloaders=(reloader,)))
    store(
        certman.keystore,
        replace(
            standalone_spec(pebble, "exec.example"),
            solvers=(SolverSpec("dns-01", {"provider": "exec", "program": "bin/dns-hook"}),),
        ),
    )

    monkeypatch.chdir(tmp_path)  # by hand, ./reload.sh, bin/dns-hook and dns-hook (on PATH) are found
    doctor = certman("doctor", *ca_flags(pebble), *free_port_flags(), env={"PATH": f"{hook.parent}:/usr/bin:/bin"})

    assert fail_lines(doctor) == [
        "FAIL  solver dns-01: program = bin/dns-hook is a relative path, which a renewal started from / "
        "would not find (for exec.example) (hint: record the absolute path of bin/dns-hook)",
        "FAIL  reloader command: argv: program ./reload.sh is a relative path, which a renewal started from / "
        "would not find (for r0.example) (hint: give the program's absolute path)",
        f"FAIL  reloader command: argv: program certman-no-such-program is not in the timer's PATH ({TIMER_PATH}) "
        "(for r1.example) (hint: install it, or give the program's absolute path)",
        f"FAIL  reloader command: argv: program dns-hook is not in the timer's PATH ({TIMER_PATH}) "
        f"(for r3.example) (hint: give its absolute path: {hook})",
    ]
    assert "ok    reloader nginx: configured; runs /usr/sbin/nginx (for r2.example)" in doctor.stdout.splitlines()


def test_nginx_in_usr_sbin_passes_from_a_bare_environment(pebble: services.Pebble, tmp_path: Path) -> None:
    keystore = tmp_path / "ks"
    store(keystore, standalone_spec(pebble, "nginx.example", reloaders=({"name": "nginx"},)))

    doctor = timer_run("--keystore", str(keystore), "doctor", *ca_flags(pebble), *free_port_flags())

    assert "ok    reloader nginx: configured; runs /usr/sbin/nginx (for nginx.example)" in doctor.stdout
    assert doctor.returncode == 0, doctor.stdout


# --- each certificate's port ------------------------------------------------------------------


def test_a_certificates_port_held_by_nginx_fails_naming_nginx_and_the_certificates(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path, start_nginx
) -> None:
    port = services.free_port()
    nginx: Nginx = start_nginx(f"  server {{ listen 127.0.0.1:{port}; }}\n", lambda: _accepts(port))
    assert nginx.service.process is not None
    solver = SolverSpec("standalone", {"address": "127.0.0.1", "port": port})
    store(certman.keystore, replace(standalone_spec(pebble, "stored.example"), solvers=(solver,)))
    config = tmp_path / "certman.toml"
    config.write_text(
        '[[certificate]]\nnames = ["declared.example"]\n'
        f'[[certificate.solver]]\nname = "standalone"\naddress = "127.0.0.1"\nport = {port}\n'
    )

    doctor = certman("--config", str(config), "doctor", *ca_flags(pebble), *free_port_flags())

    [line] = fail_lines(doctor)
    held = re.fullmatch(
        rf"FAIL  standalone port: cannot bind 127\.0\.0\.1:{port}: Address already in use; held by nginx "
        r"\(pid ([\d, ]+)\) \(for stored\.example, declared\.example\) \(hint: stop what holds it, or move the "
        r"solver to a free port your proxy forwards /\.well-known/acme-challenge/ to\)",
        line,
    )
    assert held is not None, line
    # The master holds it from the start; its workers, once forked, hold it too.
    assert str(nginx.service.process.pid) in held.group(1).split(", ")


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=services.PROBE_TIMEOUT).close()
    except OSError:
        return False
    return True
