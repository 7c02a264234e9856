"""A new user follows docs/getting-started.md literally: no root, from /, with cron's bare
environment (`env -i PATH=/usr/bin:/bin`), against the test Pebble."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import services

CERTMAN = str(Path(sys.executable).parent / "certman")
NOBODY = 65534
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


class NewUser:
    def __init__(self, home: Path, pebble: services.Pebble) -> None:
        self.home = home
        self.ca_bundle = home / "pebble-ca.pem"
        shutil.copy(pebble.ca_bundle, self.ca_bundle)
        self.server = pebble.directory_url
        self.http_port = pebble.http_port

    def certman(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", CERTMAN, *args]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.home)}
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, cwd="/")

    def ca_flags(self) -> list[str]:
        return ["--server", self.server, "--ca-bundle", str(self.ca_bundle)]


@pytest.fixture
def new_user(pebble: services.Pebble) -> Iterator[NewUser]:
    home = Path(tempfile.mkdtemp(prefix="certman-new-user-"))
    user = NewUser(home, pebble)
    for path in (home, user.ca_bundle):
        os.chown(path, NOBODY, NOBODY)
    home.chmod(0o755)
    yield user
    shutil.rmtree(home)


def test_the_default_port_80_without_root_says_how_to_go_on(new_user: NewUser) -> None:
    done = new_user.certman("issue", "--email", "ops@example.com", "--agree-tos", "example.com", "www.example.com")
    assert done.returncode == 5
    assert done.stderr.splitlines() == [
        "certman: not allowed to listen on *:80: port 80 is privileged",
        "hint: run as root (or with CAP_NET_BIND_SERVICE), or listen on a port above 1023 that your proxy "
        "forwards the challenge to (docs/getting-started.md, step 3)",
    ]


def test_issue_makes_the_keystore_in_the_users_data_home_and_prints_human_times(new_user: NewUser) -> None:
    done = new_user.certman(
        "issue", *new_user.ca_flags(), "--email", "ops@example.com", "--agree-tos",
        "--http-port", str(new_user.http_port), "example.com", "www.example.com",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    live = new_user.home / ".local/share/certman/live/example.com"
    assert f"  fullchain: {live}/fullchain.pem" in done.stdout
    assert re.search(r"valid until \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$", done.stdout.splitlines()[0])
    assert not ISO.search(done.stdout)


def test_the_settings_file_of_getting_started_issues_with_no_flags(new_user: NewUser) -> None:
    config = new_user.home / ".config/certman/certman.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        f'server = "{new_user.server}"\nca_bundle = "../../pebble-ca.pem"\nemail = "ops@example.com"\n'
        f'agree_tos = true\nkey_type = "ecdsa-p256"\nsolver = "standalone"\nhttp_address = "127.0.0.1"\n'
        f"http_port = {new_user.http_port}\n"
    )
    for path in (config.parent.parent, config.parent, config):
        os.chown(path, NOBODY, NOBODY)
    done = new_user.certman("issue", "example.org")
    assert done.returncode == 0, done.stderr
    listed = new_user.certman("list")
    assert re.search(r"^example\.org\s+ok\s+89\s", listed.stdout, re.MULTILINE), listed.stdout
