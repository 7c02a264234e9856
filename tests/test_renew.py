"""`renew()` against Pebble: what is due is renewed, the rest is left alone, failures back off."""

from __future__ import annotations

import concurrent.futures
import datetime

import pytest
from fixtures.renewal import RenewEnv, later

from certman.ca.accounts import AccountSettings
from certman.errors import KeystoreLocked
from certman.issuance.issue import issue
from certman.keystore import FileKeystore, locks
from certman.renewal.declared import declared_specs
from certman.renewal.job import renew

NEVER_SERVED = "/nonexistent-webroot"


def declare(*names: str, **extra: object) -> dict[str, object]:
    return {"names": list(names), **extra}


def issue_declared(env: RenewEnv, *tables: dict[str, object]) -> None:
    settings = env.settings(certificates=tables)
    for spec in declared_specs(settings).values():
        issue(spec, env.keystore, account=AccountSettings(agree_tos=True), timeout=30)


def test_every_declared_certificate_that_is_missing_is_issued(renew_env: RenewEnv):
    settings = renew_env.settings(certificates=(declare("a.example"), declare("b.example", "www.b.example")))
    report = renew(renew_env.keystore, settings, jobs=2)
    assert [(r.name, r.action) for r in report.results] == [("a.example", "issued"), ("b.example", "issued")]
    assert report.exit_code == 0
    assert renew_env.keystore.read_index()["b.example"].identifiers == ("b.example", "www.b.example")


def test_a_certificate_that_is_not_due_is_left_alone(renew_env: RenewEnv):
    issue_declared(renew_env, declare("fresh.example"))
    report = renew(renew_env.keystore, renew_env.settings())
    assert report.results[0].action == "skipped"
    assert "not due until" in report.results[0].reason
    assert renew_env.keystore.versions("fresh.example") == ["000001"]


def test_a_due_certificate_is_renewed_from_its_stored_spec(renew_env: RenewEnv):
    issue_declared(renew_env, declare("due.example", "www.due.example", key_type="ecdsa-p384"))
    before = renew_env.keystore.read_index()["due.example"]
    report = renew(renew_env.keystore, renew_env.settings(), clock=lambda: later(days=3.5))
    result = report.results[0]
    assert result.action == "renewed"
    after = renew_env.keystore.read_index()["due.example"]
    assert after.serial != before.serial and result.serial == after.serial
    assert after.identifiers == before.identifiers
    assert after.key_type == "ecdsa-p384"


def test_force_renews_a_certificate_that_is_not_due(renew_env: RenewEnv):
    issue_declared(renew_env, declare("forced.example"))
    report = renew(renew_env.keystore, renew_env.settings(), force=True)
    assert report.results[0].action == "renewed"
    assert report.results[0].reason == "forced"
    assert renew_env.keystore.versions("forced.example") == ["000001", "000002"]


def test_check_reports_what_is_due_and_changes_nothing(renew_env: RenewEnv):
    issue_declared(renew_env, declare("checked.example"))
    state_path = renew_env.keystore.layout.state("checked.example")
    report = renew(renew_env.keystore, renew_env.settings(), check=True, clock=lambda: later(days=3.5))
    assert report.results[0].action == "due"
    assert renew_env.keystore.versions("checked.example") == ["000001"]
    assert not state_path.exists()


def test_one_failure_does_not_stop_the_others(renew_env: RenewEnv):
    tables = (declare("good.example"), declare("bad.example", solver=[{"name": "webroot", "path": NEVER_SERVED}]))
    report = renew(renew_env.keystore, renew_env.settings(certificates=tables), jobs=2)
    by_name = {r.name: r for r in report.results}
    assert by_name["good.example"].action == "issued"
    assert by_name["bad.example"].action == "failed"
    assert report.exit_code == 7


def test_a_failed_certificate_backs_off_one_minute_then_ten(renew_env: RenewEnv):
    tables = (declare("bad.example", solver=[{"name": "webroot", "path": NEVER_SERVED}]),)
    settings = renew_env.settings(certificates=tables)
    start = later()
    renew(renew_env.keystore, settings, clock=lambda: start)
    state = renew_env.keystore.read_state("bad.example")
    assert state.consecutive_failures == 1
    assert "does not exist" in state.last_error
    assert state.next_attempt == state.last_attempt + datetime.timedelta(minutes=1)

    waiting = renew(renew_env.keystore, settings, clock=lambda: start + datetime.timedelta(seconds=30))
    assert waiting.results[0].action == "skipped"
    assert "backing off after 1 failure(s)" in waiting.results[0].reason

    renew(renew_env.keystore, settings, clock=lambda: start + datetime.timedelta(minutes=2))
    state = renew_env.keystore.read_state("bad.example")
    assert state.consecutive_failures == 2
    assert state.next_attempt == state.last_attempt + datetime.timedelta(minutes=10)


def test_force_bypasses_the_backoff(renew_env: RenewEnv):
    tables = (declare("bad.example", solver=[{"name": "webroot", "path": NEVER_SERVED}]),)
    settings = renew_env.settings(certificates=tables)
    renew(renew_env.keystore, settings)
    report = renew(renew_env.keystore, settings, force=True)
    assert report.results[0].action == "failed"
    assert renew_env.keystore.read_state("bad.example").consecutive_failures == 2


def test_success_clears_the_failure_state(renew_env: RenewEnv):
    name = "flaky.example"
    failing = renew_env.settings(certificates=(declare(name, solver=[{"name": "webroot", "path": NEVER_SERVED}]),))
    renew(renew_env.keystore, failing)
    working = renew_env.settings(certificates=(declare(name),))
    report = renew(renew_env.keystore, working, force=True)
    assert report.results[0].action == "issued"
    state = renew_env.keystore.read_state(name)
    assert state.consecutive_failures == 0 and state.last_error is None
    assert state.last_failure is not None


def test_a_changed_declaration_is_issued_again(renew_env: RenewEnv):
    issue_declared(renew_env, declare("grow.example"))
    settings = renew_env.settings(certificates=(declare("grow.example", "www.grow.example"),))
    report = renew(renew_env.keystore, settings)
    assert report.results[0].action == "issued"
    assert report.results[0].reason == "its declaration changed: identifiers changed (added www.grow.example)"
    assert renew_env.keystore.read_index()["grow.example"].identifiers == ("grow.example", "www.grow.example")


def test_an_unchanged_declaration_is_not_issued_again(renew_env: RenewEnv):
    tables = (declare("same.example"),)
    renew(renew_env.keystore, renew_env.settings(certificates=tables))
    report = renew(renew_env.keystore, renew_env.settings(certificates=tables))
    assert report.results[0].action == "skipped"


def test_the_renewal_time_is_reported_for_every_certificate(renew_env: RenewEnv):
    renew(renew_env.keystore, renew_env.settings(certificates=(declare("when.example"),)))
    report = renew(renew_env.keystore, renew_env.settings())
    result = report.results[0]
    lifetime = result.not_after - renew_env.keystore.read_index()["when.example"].not_before
    assert result.not_after - lifetime / 2 <= result.next_renewal <= result.not_after - lifetime * 0.45


def test_two_runs_at_once_issue_a_certificate_only_once(renew_env: RenewEnv):
    settings = renew_env.settings(certificates=(declare("once.example"),))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        reports = list(pool.map(lambda _: renew(renew_env.keystore, settings), range(2)))
    assert sorted(r.results[0].action for r in reports) == ["issued", "skipped"]
    assert renew_env.keystore.versions("once.example") == ["000001"]


def test_a_run_that_cannot_get_the_run_lock_in_time_fails_cleanly(renew_env: RenewEnv):
    keystore = FileKeystore(renew_env.keystore.root, lock_timeout=0.2)
    settings = renew_env.settings(certificates=(declare("locked.example"),))
    with locks.hold(keystore.layout.locks / "renew.lock", timeout=1, what="test"):
        with pytest.raises(KeystoreLocked, match="certman renew is locked by another certman run"):
            renew(keystore, settings)
    assert not keystore.has("locked.example")


def test_a_revoked_certificate_is_not_renewed_unless_forced(renew_env: RenewEnv):
    from certman.lifecycle import revoke

    issue_declared(renew_env, declare("revoked.example"))
    revoked_serial = renew_env.keystore.read_index()["revoked.example"].serial
    revoke(renew_env.keystore, "revoked.example", reason="superseded")

    skipped = renew(renew_env.keystore, renew_env.settings(), clock=lambda: later(days=3.5)).results[0]
    forced = renew(renew_env.keystore, renew_env.settings(), force=True).results[0]

    assert skipped.action == "skipped" and skipped.reason.startswith("revoked (superseded)")
    assert forced.action == "renewed" and forced.serial != revoked_serial


def test_a_bad_reloader_table_fails_before_any_certificate_is_ordered(renew_env: RenewEnv):
    settings = renew_env.settings(
        certificates=({"names": ["badhook.example"], "reloader": [{"name": "nosuch"}]}, {"names": ["goodhook.example"]})
    )

    report = renew(renew_env.keystore, settings)

    results = {r.name: r for r in report.results}
    assert "unknown reloader 'nosuch'" in (results["badhook.example"].error or "")
    assert renew_env.keystore.versions("badhook.example") == []
    assert results["goodhook.example"].ok
    assert report.exit_code == 7


def test_a_failed_forced_renewal_of_a_certificate_not_due_stops_failing_the_run_once_its_backoff_ends(
    renew_env: RenewEnv,
):
    name = "forced.example"
    declared = (declare(name),)
    good = renew_env.settings(certificates=declared)
    assert renew(renew_env.keystore, good).exit_code == 0
    broken = renew_env.settings(certificates=(declare(name, solver=[{"name": "webroot", "path": NEVER_SERVED}]),))
    start = later()
    assert renew(renew_env.keystore, broken, force=True, clock=lambda: start).exit_code == 7

    waiting = renew(renew_env.keystore, good, clock=lambda: start + datetime.timedelta(seconds=30))
    after = renew(renew_env.keystore, good, clock=lambda: start + datetime.timedelta(minutes=2))

    assert waiting.exit_code == 7 and waiting.results[0].error is not None
    assert after.exit_code == 0, after.results[0]
    assert after.results[0].action == "skipped" and after.results[0].error is None
    assert renew_env.keystore.read_state(name).consecutive_failures == 1
