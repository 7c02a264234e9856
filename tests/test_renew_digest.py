"""A no-op renew decides from index.json alone: each entry carries the renewal digest of
its state (issue 15). Offline: the certificates are made locally, none is due unless the
clock moves, and the CA (127.0.0.1:1) refuses every connection."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from fixtures.cli import CertmanRun
from fixtures.listing import store

from certman.config import Settings
from certman.keystore import FileKeystore, RenewalState
from certman.keystore.index import dump_json
from certman.renewal.job import renew

NAMES = ("a.example", "b.example", "c.example")
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@pytest.fixture
def keystore(tmp_path: Path) -> FileKeystore:
    """Three certificates ten days into their 90, as the previous release indexed them."""
    keystore = FileKeystore(tmp_path / "keystore")
    for name in NAMES:
        store(keystore, name, [name], 10, 90)
    # The previous release's index: format 1, indented, no digests.
    entries = json.loads(keystore.layout.index.read_bytes())["certificates"]
    keystore.layout.index.write_bytes(dump_json({"format": 1, "certificates": entries}))
    return keystore


def run(keystore: FileKeystore, moment: datetime.datetime = NOW) -> dict[str, dict[str, object]]:
    report = renew(keystore, Settings(keystore=keystore.root), clock=lambda: moment)
    return {r["name"]: r for r in report.to_dict()["certificates"]}


def test_the_first_run_over_an_index_of_the_previous_release_notes_a_digest_per_certificate(keystore: FileKeystore):
    run(keystore)
    assert all(entry.renewal is not None for entry in keystore.read_index().values())


def test_a_run_from_the_digests_reports_what_a_run_from_the_state_files_reports(keystore: FileKeystore):
    from_states = run(keystore)
    assert run(keystore) == from_states


def test_a_run_opens_no_state_file_of_a_certificate_its_digest_says_is_quiet(keystore: FileKeystore):
    run(keystore)
    keystore.layout.state("b.example").write_text("{not json")
    assert {r["action"] for r in run(keystore).values()} == {"skipped"}


def test_a_state_written_after_the_digest_decides_the_next_run(keystore: FileKeystore):
    run(keystore)
    failed = RenewalState(
        last_failure=NOW,
        last_error="the CA said no",
        consecutive_failures=1,
        next_attempt=NOW + datetime.timedelta(hours=1),
    )
    keystore.write_state("b.example", failed)
    result = run(keystore)["b.example"]
    assert "backing off" in str(result["reason"]) and result["error"] == "the CA said no"


def test_a_digest_does_not_hold_back_a_certificate_that_came_due(keystore: FileKeystore):
    run(keystore)
    result = run(keystore, NOW + datetime.timedelta(days=60))["a.example"]
    assert result["action"] == "failed" and "lifetime" in str(result["reason"])


def test_a_changed_renew_window_is_decided_from_the_record_not_the_digest(keystore: FileKeystore):
    run(keystore)
    spec = keystore.read_spec("c.example")
    keystore.write_spec(spec.__class__.from_dict({**spec.to_dict(), "renew_before_days": 89.5}, "test"))
    result = run(keystore)["c.example"]
    assert result["action"] == "failed" and "renew_before (89.5" in str(result["reason"])


def test_a_killed_run_leaves_no_digest_for_the_state_it_was_writing(keystore: FileKeystore):
    run(keystore)
    with keystore.digests_dropped(["a.example"]):
        # What a run killed here leaves: the digest gone, the state not yet noted.
        keystore.write_state("a.example", RenewalState(last_error="half-way", consecutive_failures=1))
        assert keystore.read_index()["a.example"].renewal is None


def test_renew_lists_past_twenty_quiet_certificates_in_one_line(certman: CertmanRun):
    keystore = FileKeystore(certman.keystore)
    for i in range(21):
        store(keystore, f"host{i}.example", [f"host{i}.example"], 10, 90)
    out = certman("renew").output
    assert "host0.example" not in out
    assert "21 ok certificate(s) not listed" in out


def test_renew_json_keeps_a_result_per_certificate_past_twenty(certman: CertmanRun):
    keystore = FileKeystore(certman.keystore)
    for i in range(21):
        store(keystore, f"host{i}.example", [f"host{i}.example"], 10, 90)
    document = json.loads(certman("renew", "--json").output)
    assert len(document["certificates"]) == 21
