"""A keystore written by certman 0.1 (tests/golden/keystore-v0.1) is read, listed, explained and renewed."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.renewal import RenewEnv

from certman.cli import cli
from certman.config import SolverSpec
from certman.keystore import FileKeystore, RenewalState
from certman.lifecycle import describe
from certman.renewal.explain import explain
from certman.renewal.job import renew

GOLDEN = Path(__file__).parent / "golden" / "keystore-v0.1"
NAMES = ["alpha.example", "beta.example", "delta.example", "gamma.example"]


def _raw(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture
def golden(tmp_path: Path) -> FileKeystore:
    """A copy of the golden keystore with the modes git does not keep (0700 directories, 0600 files)."""
    root = tmp_path / "ks"
    shutil.copytree(GOLDEN, root, symlinks=True)
    (root / "README").unlink()
    for directory, _dirs, files in os.walk(root):
        os.chmod(directory, 0o700)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o600)
    return FileKeystore(root)


def _set(data: dict) -> dict:
    return {k: v for k, v in data.items() if v is not None}


def _fixed(moment: datetime.datetime):
    return lambda: moment


def _issued_at(keystore: FileKeystore) -> datetime.datetime:
    return keystore.read_index()["alpha.example"].not_before


def test_every_record_reads_and_encodes_back_to_what_0_1_wrote(golden: FileKeystore):
    index = golden.read_index()
    raw_index = _raw(golden.layout.index)["certificates"]
    assert sorted(index) == NAMES
    for name, entry in index.items():
        assert entry.to_json() == raw_index[name]
        # States are written in the documented shape, every key present: 0.1 left out
        # the keys a run had not touched yet, which read as null.
        state = golden.read_state(name)
        assert _set(state.to_json()) == _set(_raw(golden.layout.state(name)))
        assert RenewalState.from_json(state.to_json(), "again") == state
        for version in golden.versions(name):
            assert golden.read_meta(name, version).to_json() == _raw(golden.layout.meta(name, version))
    [ca] = golden.account_cas()
    key_pem, account = golden.load_account(ca)
    assert key_pem.startswith(b"-----BEGIN")
    assert account.to_json() == _raw(golden.layout.account_file(ca))
    marker = golden.read_revocation("delta.example")
    assert marker is not None and marker.to_json() == _raw(golden.layout.revoked("delta.example"))
    assert index["delta.example"].revoked


def test_the_states_hold_what_0_1_recorded(golden: FileKeystore):
    states = golden.read_states(NAMES)
    assert golden.versions("alpha.example") == ["000001", "000002"]
    assert states["alpha.example"].ari.window_start is not None
    assert states["alpha.example"].ari.cert_id == golden.read_index()["alpha.example"].ari_cert_id
    beta = states["beta.example"]
    assert beta.consecutive_failures == 1 and "rate-limited" in beta.last_error
    assert beta.retry_after is not None and beta.next_attempt == beta.retry_after
    gamma = states["gamma.example"]
    assert gamma.deploy.pending and gamma.deploy.serial == golden.read_index()["gamma.example"].serial


def test_list_show_and_explain_read_it(golden: FileKeystore):
    listed = CliRunner().invoke(cli, ["--keystore", str(golden.root), "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)["certificates"]
    assert [r["name"] for r in rows] == NAMES
    assert rows[0]["identifiers"] == ["alpha.example", "www.alpha.example"]
    assert rows[0]["version"] == "000002"
    shown = CliRunner().invoke(cli, ["--keystore", str(golden.root), "show", "delta.example", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["revoked"]["reason"] == "superseded"
    report = describe(golden, "alpha.example", clock=_fixed(_issued_at(golden)))
    assert [v.version for v in report.versions] == ["000001", "000002"]
    verdicts = {e.name: e for e in explain(golden, clock=_fixed(_issued_at(golden) + datetime.timedelta(minutes=5)))}
    assert verdicts["alpha.example"].action == "skip"
    assert any("ARI" in s for s in verdicts["alpha.example"].sentences)
    assert verdicts["beta.example"].action == "skip"
    assert any("Retry-After" in s for s in verdicts["beta.example"].sentences)
    assert verdicts["gamma.example"].action == "deploy"
    assert "revoked" in verdicts["delta.example"].sentences[-1]


def test_renew_check_plans_it_as_0_1_would(golden: FileKeystore, renew_env: RenewEnv):
    settings = dataclasses.replace(renew_env.settings(), keystore=golden.root)
    soon = _issued_at(golden) + datetime.timedelta(minutes=5)
    report = renew(golden, settings, check=True, clock=_fixed(soon))
    actions = {r.name: (r.action, r.reason) for r in report.results}
    assert actions["alpha.example"][0] == "not-due"
    assert "backing off after 1 failure(s)" in actions["beta.example"][1]
    assert actions["gamma.example"] == ("due", "issued, not deployed: retrying the reload")
    assert actions["delta.example"][1].startswith("revoked (superseded)")
    late = renew(golden, settings, check=True, clock=_fixed(_issued_at(golden) + datetime.timedelta(days=5.5)))
    assert {r.name for r in late.results if r.action == "due"} == {"alpha.example", "beta.example", "gamma.example"}


def test_a_forced_renew_against_a_live_pebble_adds_a_version(golden: FileKeystore, renew_env: RenewEnv):
    name = "alpha.example"
    settings = renew_env.settings()
    spec = golden.read_spec(name)
    # The golden CA is gone: point the stored spec at the live Pebble, through the library.
    live = dataclasses.replace(
        spec,
        server=settings.server,
        ca_bundle=settings.ca_bundle,
        solvers=(SolverSpec("webroot", {"path": str(renew_env.webroot)}),),
    )
    with golden.lock_cert(name):
        golden.write_spec(live)
    report = renew(golden, dataclasses.replace(settings, keystore=golden.root), names=[name], force=True)
    assert report.results[0].action == "renewed", report.results[0]
    assert golden.versions(name) == ["000001", "000002", "000003"]
    assert golden.live_version(name) == "000003"
    assert golden.read_index()[name].identifiers == ("alpha.example", "www.alpha.example")
    state = golden.read_state(name)
    assert state.last_success is not None and state.consecutive_failures == 0
    assert isinstance(state, RenewalState)
