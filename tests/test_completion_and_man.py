"""Shell completion offers stored names for NAME arguments; the man pages in docs/man/
are what `make man` makes from the command tree now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.listing import CERTIFICATES

from certman.cli.manpages import pages
from certman.keystore import FileKeystore

CERTMAN = str(Path(sys.executable).parent / "certman")
MAN = Path(__file__).resolve().parent.parent / "docs" / "man"


def complete(keystore: FileKeystore, words: str) -> list[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "CERTMAN_KEYSTORE": str(keystore.root),
        "CERTMAN_CONFIG": "/dev/null",
        "_CERTMAN_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    done = subprocess.run([CERTMAN], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line]


@pytest.mark.parametrize("command", ["show", "explain", "renew", "revoke", "remove", "verify"])
def test_name_arguments_complete_to_stored_names(listed_keystore: FileKeystore, command: str) -> None:
    assert complete(listed_keystore, f"certman {command} ") == sorted(CERTIFICATES)
    assert complete(listed_keystore, f"certman {command} f") == ["failing.example", "fine.example"]


def test_subcommands_complete_too(listed_keystore: FileKeystore) -> None:
    assert "completion" in complete(listed_keystore, "certman comp")


def test_a_missing_keystore_completes_to_nothing_and_stays_missing(tmp_path: Path) -> None:
    class Missing:
        root = tmp_path / "ks"

    assert complete(Missing(), "certman show ") == []  # type: ignore[arg-type]
    assert not (tmp_path / "ks").exists()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_for_the_shell(shell: str) -> None:
    done = subprocess.run([CERTMAN, "completion", shell], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "_CERTMAN_COMPLETE" in done.stdout and f"{shell}_complete" in done.stdout


def test_bash_accepts_the_script() -> None:
    script = subprocess.run([CERTMAN, "completion", "bash"], capture_output=True, text=True, timeout=60).stdout
    done = subprocess.run(["bash", "-c", f"{script}\ncomplete -p certman"], capture_output=True, text=True)
    assert done.returncode == 0 and "certman" in done.stdout, done.stderr


def test_the_man_pages_are_current() -> None:
    made = pages()
    stored = {p.name: p.read_text() for p in MAN.glob("*.1")}
    assert set(stored) == set(made), "run `make man`"
    stale = [name for name in made if stored[name] != made[name]]
    assert not stale, f"run `make man`: {stale} differ"
    assert {"certman.1", "certman-renew.1", "certman-timer-install.1", "certman-completion.1"} <= set(made)


def test_the_man_pages_render_without_warnings() -> None:
    done = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", *sorted(map(str, MAN.glob("*.1")))], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == ""
