"""A wait of over a second shows one updating status line on a terminal, and nothing when piped:
for the CA, for DNS propagation (naming the nameservers that still lack the record) and for
a reload."""

from __future__ import annotations

import contextlib
import re
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import services
from fixtures.bind import Bind
from fixtures.cli import issue_flags

CERTMAN = str(Path(sys.executable).parent / "certman")


@contextlib.contextmanager
def silent_ca() -> Iterator[int]:
    """A port that accepts connections (into the backlog) and never answers: a stalled CA."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def issue_argv(port: int, timeout: str = "2") -> list[str]:
    return [
        CERTMAN,
        "issue",
        "--server",
        f"https://127.0.0.1:{port}/dir",
        "--agree-tos",
        "--timeout",
        timeout,
        "a.example",
    ]


def env_of(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "CERTMAN_KEYSTORE": str(tmp_path / "ks"), "CERTMAN_CONFIG": "/dev/null"}


def test_a_stalled_ca_shows_what_is_awaited_and_for_how_long_on_a_terminal(tmp_path: Path) -> None:
    with silent_ca() as port:
        # script(1) gives certman a terminal; its output is what the terminal was sent.
        done = subprocess.run(
            ["script", "-qec", shlex.join(issue_argv(port)), "/dev/null"],
            capture_output=True,
            timeout=60,
            env={**env_of(tmp_path), "TERM": "xterm"},
        )
    screen = done.stdout.decode()  # bytes: universal newlines would turn each \r into \n
    assert done.returncode == 4, screen
    assert f"\r\x1b[Kwaiting for the CA at 127.0.0.1:{port} (1 s)" in screen
    # One line, redrawn in place: no newline between the updates.
    assert "\n" not in screen.split("\r\x1b[Kcertman: ")[0]
    # The line is erased before the error, which starts a clean line.
    assert "\r\x1b[Kcertman: cannot reach the ACME server" in screen
    assert "\nhint: " in screen.replace("\r\n", "\n")


def test_a_narrow_terminal_cuts_what_is_awaited_and_keeps_how_long(tmp_path: Path) -> None:
    with silent_ca() as port:
        code, screen = on_a_terminal(issue_argv(port), {**env_of(tmp_path), "COLUMNS": "40"})
    assert code == 4, screen
    lines = re.findall(r"\r\x1b\[K(waiting [^\r]*)", screen)
    assert lines and all(len(line) <= 39 and re.search(r"\u2026 \(\d+ s\)$", line) for line in lines), lines


def test_nothing_of_it_when_piped(tmp_path: Path) -> None:
    with silent_ca() as port:
        done = subprocess.run(issue_argv(port, "1.5"), capture_output=True, text=True, timeout=60, env=env_of(tmp_path))
    assert done.returncode == 4
    assert "waiting" not in done.stderr and "\r" not in done.stderr and "\x1b" not in done.stderr
    assert [line.split(":")[0] for line in done.stderr.splitlines()] == ["certman", "hint"]


# An operator's DNS hook whose provider is slow to publish: it returns at once and writes
# the record DELAY seconds later, from a process of its own (a TSIG update of example.test).
SLOW_HOOK = """#!{python}
import os, sys, time
import dns.query, dns.tsigkeyring, dns.update
action, fqdn, value = sys.argv[1:4]
def update():
    keyring = dns.tsigkeyring.from_text({{os.environ["HOOK_KEY_NAME"]: ("hmac-sha256", os.environ["HOOK_KEY_SECRET"])}})
    message = dns.update.UpdateMessage("example.test.", keyring=keyring)
    if action == "present":
        message.add(fqdn, 60, "TXT", '"' + value + '"')
    else:
        message.delete(fqdn, "TXT", '"' + value + '"')
    dns.query.tcp(message, "127.0.0.1", port=int(os.environ["HOOK_DNS_PORT"]), timeout=5)
if action == "present" and os.fork() == 0:
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    time.sleep({delay})
    update()
    os._exit(0)
if action != "present":
    update()
"""


def on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``argv`` with a terminal (script(1)); its exit status and what the terminal was sent."""
    done = subprocess.run(
        ["script", "-qec", shlex.join(argv), "/dev/null"],
        capture_output=True,
        timeout=120,
        env={**env, "TERM": "xterm"},
    )
    return done.returncode, done.stdout.decode()  # bytes: universal newlines would turn each \r into \n


def test_dns_propagation_shows_which_nameservers_still_lack_the_record(
    tmp_path: Path, dns_pebble: services.Pebble, bind: Bind
) -> None:
    hook = tmp_path / "slow-dns-hook"
    hook.write_text(SLOW_HOOK.format(python=sys.executable, delay=2.5))
    hook.chmod(0o700)
    config = tmp_path / "certman.toml"
    config.write_text(
        f'server = "{dns_pebble.directory_url}"\nca_bundle = "{dns_pebble.ca_bundle}"\nagree_tos = true\n'
        f'[[solver]]\nname = "dns-01"\nprovider = "exec"\nprogram = "{hook}"\n'
        f'resolvers = ["{bind.address}"]\nnameserver_port = {bind.port}\npropagation_timeout = 20\n'
    )
    hook_env = {"HOOK_KEY_NAME": bind.key_name, "HOOK_KEY_SECRET": bind.key_secret, "HOOK_DNS_PORT": str(bind.port)}
    env = {**env_of(tmp_path), "CERTMAN_CONFIG": str(config), "COLUMNS": "200", **hook_env}

    code, screen = on_a_terminal([CERTMAN, "issue", "slow-dns.example.test"], env)

    assert code == 0, screen
    line = re.search(r"\r\x1b\[Kwaiting for DNS propagation: ([^\r]*) still lack the record \(\d+ s\)", screen)
    assert line is not None, screen
    assert "127.0.0.1" in line.group(1)
    # Erased before the result is printed on a clean line.
    assert "\r\x1b[Kissued slow-dns.example.test" in screen


def test_a_slow_reload_shows_the_reloader_and_its_certificates(tmp_path: Path, pebble: services.Pebble) -> None:
    reload = '["/bin/sleep", "2.5"]'
    argv = [CERTMAN, "issue", *issue_flags(pebble), "--reload-cmd", reload, "slow-reload.example"]

    code, screen = on_a_terminal(argv, env_of(tmp_path))

    assert code == 0, screen
    assert re.search(r"\r\x1b\[Kwaiting for the command reload \(slow-reload\.example\) \(\d+ s\)", screen), screen
    assert "\r\x1b[Kissued slow-reload.example" in screen
