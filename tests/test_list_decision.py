"""`list` marks a certificate due exactly when renew would renew it: the same decision
(renewal.plan.next_step) as renew --check and explain, from the index's marks instead of
each state.json. Two cases the lifetime rule alone misses: the CA's ARI window has opened,
and the certman.toml declaration changed in a way that re-issues."""

from __future__ import annotations

import dataclasses
import datetime
import re
import subprocess
import sys
import time
from pathlib import Path

import services
from fixtures.cli import CertmanRun, issue_flags
from fixtures.fault_proxy import FaultProxy
from fixtures.renewal import RenewEnv

from certman.renewal.job import renew

CERTMAN = str(Path(sys.executable).parent / "certman")


def words(keystore: Path, config: Path, name: str) -> dict[str, str]:
    """The status word of ``name`` in list, renew --check and explain, run as the timer would."""
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", "CERTMAN_KEYSTORE": str(keystore), "CERTMAN_CONFIG": str(config)}

    def run(*args: str) -> str:
        done = subprocess.run([CERTMAN, *args], capture_output=True, text=True, timeout=60, env=env, cwd="/")
        assert done.returncode == 0, done.stderr
        return done.stdout

    def cell(table: str) -> str:
        row = next(line for line in table.splitlines() if line.startswith(name + " "))
        return re.split(r"\s{2,}", row.strip())[1]

    explained = run("explain", name).splitlines()[0]
    return {"list": cell(run("list")), "check": cell(run("renew", "--check")), "explain": explained.split("  ")[1]}


def test_list_says_due_once_the_cas_ari_window_has_opened(
    renew_env: RenewEnv, ari_proxy: FaultProxy, tmp_path: Path
) -> None:
    name = "ari-listed.example"
    settings = dataclasses.replace(renew_env.settings(), server=ari_proxy.directory_url, certificates=())
    issued = renew(renew_env.keystore, dataclasses.replace(settings, certificates=({"names": [name]},)))
    assert issued.results[0].action == "issued", issued.results[0].error
    entry = renew_env.keystore.read_index()[name]
    # A window that ends just after issuance: renew chooses a time inside it, stored in the state.
    end = entry.not_before + datetime.timedelta(seconds=1)
    ari_proxy.ari.windows[entry.ari_cert_id] = (entry.not_before - datetime.timedelta(hours=2), end)
    earlier = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    fetched = renew(renew_env.keystore, settings, clock=lambda: earlier)  # a run from before the window
    assert fetched.results[0].action == "skipped" and renew_env.keystore.read_state(name).ari is not None
    while datetime.datetime.now(datetime.UTC) <= end:
        time.sleep(0.1)  # the window, and so the chosen time, is behind us

    assert words(renew_env.keystore.root, Path("/dev/null"), name) == {"list": "due", "check": "due", "explain": "due"}


def test_list_says_due_when_the_declaration_would_reissue(
    certman: CertmanRun, pebble: services.Pebble, tmp_path: Path
) -> None:
    assert certman("issue", *issue_flags(pebble), "declared-listed.example").exit_code == 0
    config = tmp_path / "certman.toml"
    config.write_text(
        f'server = "{pebble.directory_url}"\nca_bundle = "{pebble.ca_bundle}"\n'
        '[[certificate]]\nnames = ["declared-listed.example"]\nkey_type = "ecdsa-p384"\n'
    )
    assert words(certman.keystore, config, "declared-listed.example") == {
        "list": "due",
        "check": "due",
        "explain": "due",
    }


def test_list_reads_no_state_file(certman: CertmanRun, pebble: services.Pebble, tmp_path: Path) -> None:
    assert certman("issue", *issue_flags(pebble), "stateless.example").exit_code == 0
    (certman.keystore / "certs" / "stateless.example" / "state.json").write_text("not json")
    done = subprocess.run(
        [CERTMAN, "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CERTMAN_KEYSTORE": str(certman.keystore), "CERTMAN_CONFIG": "/dev/null"},
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^stateless\.example\s+ok\s", done.stdout, re.MULTILINE), done.stdout
