"""The due rule, jitter, ARI window choice and failure backoff (pure: `now` is passed in)."""

from __future__ import annotations

import datetime

from certman.keystore.records import IndexEntry
from certman.keystore.state_records import RenewalState
from certman.keystore.times import encode_time
from certman.renewal import rules as renewal
from certman.renewal.rules import decide

UTC = datetime.UTC
T0 = datetime.datetime(2026, 1, 1, tzinfo=UTC)


def entry(days: float = 90, serial: str = "abc", **extra: object) -> IndexEntry:
    raw = {
        "not_before": encode_time(T0),
        "not_after": encode_time(T0 + datetime.timedelta(days=days)),
        "serial": serial,
        "ari_cert_id": f"aki.{serial}",
        **extra,
    }
    return IndexEntry.from_json(raw, "index.json", "a")


def st(raw: dict[str, object]) -> RenewalState:
    """A state as renewal reads it from a state.json holding ``raw``."""
    return RenewalState.from_json(raw, "state.json")


def test_a_fresh_certificate_is_not_due():
    decision = decide("a", entry(), st({}), T0 + datetime.timedelta(days=1))
    assert decision.action == renewal.SKIP
    assert "not due until" in decision.reason


def test_due_once_at_most_a_third_of_the_lifetime_remains_plus_at_most_a_tenth_of_that():
    due = renewal.lifetime_renew_at("a", entry(90))
    assert T0 + datetime.timedelta(days=60) <= due <= T0 + datetime.timedelta(days=63)
    assert decide("a", entry(90), st({}), due).action == renewal.RENEW
    assert decide("a", entry(90), st({}), due - datetime.timedelta(seconds=1)).action == renewal.SKIP


def test_short_lived_certificates_renew_at_half_their_lifetime():
    due = renewal.lifetime_renew_at("a", entry(6))
    assert T0 + datetime.timedelta(days=3) <= due <= T0 + datetime.timedelta(days=3.3)


def test_jitter_is_stable_per_certificate_and_differs_between_certificates():
    first = renewal.lifetime_renew_at("a", entry(serial="1"))
    assert renewal.lifetime_renew_at("a", entry(serial="1")) == first
    spread = {renewal.lifetime_renew_at(f"cert{i}", entry(serial=str(i))) for i in range(50)}
    assert len(spread) == 50


def test_renew_before_days_overrides_the_lifetime_rule():
    due = renewal.lifetime_renew_at("a", entry(90, renew_before_days=10))
    assert T0 + datetime.timedelta(days=80) <= due <= T0 + datetime.timedelta(days=81)
    assert "renew_before" in decide("a", entry(90, renew_before_days=10), st({}), due).reason


def test_renew_before_days_not_shorter_than_the_lifetime_leaves_the_lifetime_rule_in_charge():
    lifetime_rule = renewal.lifetime_renew_at("a", entry(90))
    for days in (90, 3000):
        assert renewal.lifetime_renew_at("a", entry(90, renew_before_days=days)) == lifetime_rule
        assert decide("a", entry(90, renew_before_days=days), st({}), T0 + datetime.timedelta(days=1)).action == (
            renewal.SKIP
        )


def test_backoff_is_one_ten_and_hundred_minutes_then_daily():
    steps = [renewal.backoff_delay(n) for n in range(1, 7)]
    minutes = [s.total_seconds() / 60 for s in steps]
    assert minutes == [1, 10, 100, 1440, 1440, 1440]


def test_retry_after_wins_when_it_is_later_than_the_backoff():
    later = T0 + datetime.timedelta(hours=5)
    assert renewal.next_attempt_after_failure(T0, 1, later) == later
    assert renewal.next_attempt_after_failure(T0, 3, T0) == T0 + datetime.timedelta(minutes=100)


def test_a_due_certificate_waits_out_its_backoff():
    state = st({"consecutive_failures": 2, "next_attempt": encode_time(T0 + datetime.timedelta(days=70))})
    decision = decide("a", entry(), state, T0 + datetime.timedelta(days=65))
    assert decision.action == renewal.SKIP
    assert "backing off after 2 failure(s)" in decision.reason
    assert decide("a", entry(), state, T0 + datetime.timedelta(days=70)).action == renewal.RENEW


def test_force_bypasses_the_due_rule_and_the_backoff():
    state = st({"consecutive_failures": 5, "next_attempt": encode_time(T0 + datetime.timedelta(days=1))})
    assert decide("a", entry(), state, T0, force=True).action == renewal.RENEW


def test_an_undeployed_certificate_is_deployed_again_without_issuing():
    state = st({"deploy": {"pending": True, "serial": "abc"}})
    assert decide("a", entry(), state, T0).action == renewal.DEPLOY


def test_a_deploy_that_keeps_failing_does_not_stop_a_due_renewal():
    state = st({"deploy": {"pending": True, "serial": "abc"}})
    due, _ = renewal.renew_at("a", entry(), state)
    assert decide("a", entry(), state, due + datetime.timedelta(minutes=1)).action == renewal.RENEW


def ari_state(cert_id: str, start: datetime.datetime, end: datetime.datetime) -> RenewalState:
    return st(
        {
            "ari": {
                "cert_id": cert_id,
                "window_start": encode_time(start),
                "window_end": encode_time(end),
                "chosen": encode_time(renewal.ari_renew_at(cert_id, start, end)),
            }
        }
    )


def test_an_ari_window_replaces_the_lifetime_rule():
    start, end = T0 + datetime.timedelta(days=10), T0 + datetime.timedelta(days=11)
    state = ari_state("aki.abc", start, end)
    assert decide("a", entry(), state, start - datetime.timedelta(seconds=1)).action == renewal.SKIP
    decision = decide("a", entry(), state, end)
    assert decision.action == renewal.RENEW
    assert "ARI" in decision.reason


def test_the_time_chosen_in_an_ari_window_is_inside_it_and_stable():
    start, end = T0, T0 + datetime.timedelta(hours=10)
    chosen = renewal.ari_renew_at("aki.1", start, end)
    assert start <= chosen < end
    assert renewal.ari_renew_at("aki.1", start, end) == chosen


def test_a_window_fetched_for_the_previous_certificate_is_ignored():
    state = ari_state("aki.old", T0 - datetime.timedelta(days=1), T0)
    decision = decide("a", entry(serial="new"), state, T0 + datetime.timedelta(minutes=5))
    assert decision.action == renewal.SKIP


def test_a_window_that_ended_before_the_certificate_was_issued_is_stale():
    state = ari_state("aki.abc", T0 - datetime.timedelta(days=2), T0 - datetime.timedelta(days=1))
    assert not renewal.ari_window_usable(entry(), state.ari)
    assert decide("a", entry(), state, T0 + datetime.timedelta(minutes=5)).action == renewal.SKIP


def test_ari_is_checked_again_only_once_its_next_check_passed():
    state = st({"ari": {"cert_id": "aki.abc", "next_check": encode_time(T0 + datetime.timedelta(hours=6))}})
    assert not renewal.ari_check_due(entry(), state, T0)
    assert renewal.ari_check_due(entry(), state, T0 + datetime.timedelta(hours=6))
    assert renewal.ari_check_due(entry(serial="new"), state, T0)


def test_the_next_ari_check_honours_retry_after_within_bounds():
    assert renewal.ari_next_check(T0, None) == T0 + datetime.timedelta(hours=6)
    assert renewal.ari_next_check(T0, 3600) == T0 + datetime.timedelta(hours=1)
    assert renewal.ari_next_check(T0, 0) == T0 + datetime.timedelta(minutes=1)
    assert renewal.ari_next_check(T0, 10**9) == T0 + datetime.timedelta(days=1)
