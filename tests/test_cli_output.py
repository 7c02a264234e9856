"""Human output through the real CLI: it fits 80 and 60 columns, speaks one vocabulary,
shows one time format, and colours status words only on a terminal (tmux at 80 columns)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fixtures.listing import CERTIFICATES

from certman.keystore import FileKeystore

CERTMAN = str(Path(sys.executable).parent / "certman")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
EXPECTED = {
    "fine.example": "ok",
    "due.example": "due",
    "a-rather-long-certificate-name.example": "ok",
    "revoked.example": "revoked",
    "failing.example": "backing off",
    "undeployed.example": "undeployed",
}


def run(keystore: FileKeystore, *args: str, columns: int = 80, **env: str) -> subprocess.CompletedProcess[str]:
    config = Path(keystore.root).parent / "certman.toml"
    config.touch()
    environment = {
        "PATH": "/usr/bin:/bin",
        "COLUMNS": str(columns),
        "CERTMAN_KEYSTORE": str(keystore.root),
        "CERTMAN_CONFIG": str(config),
        **env,
    }
    return subprocess.run([CERTMAN, *args], capture_output=True, text=True, timeout=60, env=environment, cwd="/")


def rows(stdout: str) -> dict[str, list[str]]:
    """The cells of each row of a table, split on runs of two or more spaces."""
    return {line.split("  ")[0]: re.split(r"\s{2,}", line.strip()) for line in stdout.splitlines()[1:]}


def test_list_at_80_columns_shows_every_state_from_the_index(listed_keystore: FileKeystore, tmp_path: Path) -> None:
    # The states list shows come from the index: a state.json it cannot read changes nothing.
    copy = FileKeystore(shutil.copytree(listed_keystore.root, tmp_path / "copy" / "keystore", symlinks=True))
    for name in EXPECTED:
        (Path(copy.root) / "certs" / name / "state.json").write_text("not json")
    done = run(copy, "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[0].split() == ["NAME", "STATUS", "DAYS", "LEFT", "EXPIRES"]
    table = rows(done.stdout)
    assert {name: table[name][1] for name in EXPECTED} == EXPECTED
    assert not ISO.search(done.stdout)


def test_list_at_60_columns_keeps_names_and_days_left(listed_keystore: FileKeystore) -> None:
    done = run(listed_keystore, "list", columns=60)
    lines = done.stdout.splitlines()
    assert max(map(len, lines)) <= 60
    assert "DAYS LEFT" in lines[0]
    for name, line in zip(sorted(EXPECTED), lines[1:], strict=True):
        shown, *_, days, _expires = re.split(r"\s{2,}", line)
        assert name.startswith(shown.rstrip("…")) and days.isdigit()


def test_list_at_full_width_has_every_column(listed_keystore: FileKeystore) -> None:
    done = run(listed_keystore, "list", columns=200)
    assert done.stdout.splitlines()[0].split("  ")[0] == "NAME"
    for header in ("STATUS", "DAYS LEFT", "EXPIRES", "IDENTIFIERS", "ISSUER", "KEY TYPE"):
        assert header in done.stdout.splitlines()[0]
    assert "fine.example,www.fine.example" in done.stdout


def test_explain_wraps_under_each_name_and_agrees_with_list(listed_keystore: FileKeystore) -> None:
    done = run(listed_keystore, "explain")
    assert done.returncode == 0, done.stderr
    blocks = done.stdout.strip().split("\n\n")
    assert len(blocks) == len(EXPECTED)
    listed = rows(run(listed_keystore, "list").stdout)
    for block in blocks:
        head, *body = block.splitlines()
        name, word = head.split("  ", 1)
        assert word == EXPECTED[name]
        assert body and all(line.startswith("  ") and len(line) <= 80 for line in body)
        days = re.search(r"(\d+) days left", block.replace("\n    ", " "))
        assert days and days.group(1) == listed[name][2]
    assert not ISO.search(done.stdout)


def test_renew_check_speaks_the_same_words(listed_keystore: FileKeystore) -> None:
    done = run(listed_keystore, "renew", "--check", columns=200)
    table = rows(done.stdout.split("\n6 certificate")[0])
    assert {name: table[name][1] for name in EXPECTED} == EXPECTED
    assert not ISO.search(done.stdout)


def test_show_renders_the_state_as_labelled_lines(listed_keystore: FileKeystore) -> None:
    done = run(listed_keystore, "show", "failing.example")
    assert done.returncode == 0, done.stderr
    state = done.stdout.split("  state:\n", 1)[1].split("\n\n")[0].splitlines()
    labels = [line.split(":", 1)[0].strip() for line in state]
    assert labels == ["last success", "failures", "next attempt"]
    assert "2 in a row" in state[1] and "the CA could not be reached" in state[1]
    assert "{" not in done.stdout and "consecutive_failures" not in done.stdout
    assert not ISO.search(done.stdout)


@pytest.mark.parametrize(
    ("flags", "env", "coloured"),
    [
        (["--color=always"], {}, True),
        (["--color=never"], {}, False),
        ([], {}, False),  # auto, and stdout is a pipe
        (["--color=always"], {"NO_COLOR": "1"}, True),  # the flag is explicit
    ],
)
def test_colour_only_when_asked_or_on_a_terminal(
    listed_keystore: FileKeystore, flags: list[str], env: dict[str, str], coloured: bool
) -> None:
    done = run(listed_keystore, *flags, "list", **env)
    assert bool(ANSI.search(done.stdout)) is coloured
    # The word is there with or without colour.
    assert {name: rows(ANSI.sub("", done.stdout))[name][1] for name in EXPECTED} == EXPECTED


@pytest.mark.parametrize("no_color", [False, True])
def test_in_tmux_at_80_columns(listed_keystore: FileKeystore, tmp_path: Path, no_color: bool) -> None:
    socket = str(tmp_path / "tmux.sock")
    session = f"certman-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "screen.txt"
    config = Path(listed_keystore.root).parent / "certman.toml"
    config.touch()
    env = f"CERTMAN_KEYSTORE={listed_keystore.root} CERTMAN_CONFIG={config}" + (" NO_COLOR=1" if no_color else "")
    command = f"env -u COLUMNS {env} {CERTMAN} list; tmux -S {socket} wait -S done"
    tmux = ["tmux", "-S", socket, "-f", "/dev/null"]
    clean = {k: v for k, v in os.environ.items() if k not in ("TMUX", "COLUMNS", "NO_COLOR")}
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "40", "sh", "-c", f"{command}; sleep 600"],
        check=True,
        env={**clean, "TERM": "xterm-256color"},
    )
    try:
        subprocess.run([*tmux, "wait", "done"], check=True, timeout=60)
        screen = subprocess.run(
            [*tmux, "capture-pane", "-p", "-e", "-t", session], check=True, capture_output=True, text=True
        ).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
    out.write_text(screen)
    lines = [line for line in ANSI.sub("", screen).splitlines() if line.strip()]
    assert lines[0].split() == ["NAME", "STATUS", "DAYS", "LEFT", "EXPIRES"]
    assert max(map(len, lines)) <= 80
    assert bool(ANSI.search(screen)) is not no_color
    assert {name: rows("\n".join(lines))[name][1] for name in EXPECTED} == EXPECTED


def test_fixture_covers_every_listed_state() -> None:
    assert set(CERTIFICATES) == set(EXPECTED)
