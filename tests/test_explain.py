"""`certman explain` says, in sentences, what `certman renew` will do and why."""

from __future__ import annotations

import datetime
import json

from click.testing import CliRunner
from fixtures.renewal import RenewEnv, later

from certman.cli import cli
from certman.keystore import IndexEntry, RenewalState
from certman.renewal.explain import explain_one
from certman.renewal.job import renew
from certman.renewal.rules import lifetime_renew_at

UTC = datetime.UTC
NOW = datetime.datetime(2027, 1, 1, tzinfo=UTC)
ENTRY = {
    "identifiers": ["a.example"],
    "serial": "ab12",
    "not_before": "2026-12-01T00:00:00Z",
    "not_after": "2027-03-01T00:00:00Z",
    "ari_cert_id": "aki.serial",
}


def en(raw: dict[str, object]) -> IndexEntry:
    """The entry renewal reads from an index.json entry holding ``raw``."""
    return IndexEntry.from_json(raw, "index.json", "a.example")


def st(raw: dict[str, object]) -> RenewalState:
    """The state renewal reads from a state.json holding ``raw``."""
    return RenewalState.from_json(raw, "state.json")


def test_a_fresh_certificate_is_explained_by_the_lifetime_rule() -> None:
    text = " ".join(explain_one("a.example", en(ENTRY), st({}), NOW).sentences)
    assert "90 days certificate, valid until 2027-03-01 00:00 UTC" in text
    assert "renew once at most 1/3 of the lifetime is left" in text
    assert "No ARI window has been fetched" in text
    due = lifetime_renew_at("a.example", en(ENTRY))
    assert datetime.datetime(2027, 1, 30, tzinfo=UTC) <= due <= datetime.datetime(2027, 2, 2, tzinfo=UTC)
    assert f"Next renewal: {due:%Y-%m-%d %H:%M} UTC" in text


def test_an_ari_window_is_named_with_the_time_certman_picked() -> None:
    state = {
        "ari": {
            "cert_id": "aki.serial",
            "window_start": "2027-01-10T00:00:00Z",
            "window_end": "2027-01-12T00:00:00Z",
            "chosen": "2027-01-11T06:00:00Z",
            "next_check": "2027-01-01T06:00:00Z",
            "explanation_url": "https://ca.example/why",
        }
    }
    explanation = explain_one("a.example", en(ENTRY), st(state), NOW)
    text = " ".join(explanation.sentences)
    assert "between 2027-01-10 00:00 UTC and 2027-01-12 00:00 UTC (ARI, RFC 9773)" in text
    assert "picked 2027-01-11 06:00 UTC" in text
    assert "https://ca.example/why" in text
    assert explanation.renews_at == datetime.datetime(2027, 1, 11, 6, tzinfo=UTC)


def test_backoff_and_retry_after_are_explained_with_their_times() -> None:
    state = {
        "consecutive_failures": 2,
        "last_failure": "2027-01-01T00:00:00Z",
        "last_error": "rate limited",
        "retry_after": "2027-01-01T05:00:00Z",
        "next_attempt": "2027-01-01T05:00:00Z",
    }
    explanation = explain_one("a.example", en({**ENTRY, "not_after": "2027-01-02T00:00:00Z"}), st(state), NOW)
    text = " ".join(explanation.sentences)
    assert "The last 2 attempt(s) failed" in text and "rate limited" in text
    assert "not to come back before 2027-01-01 05:00 UTC" in text
    assert explanation.action == "skip"


def test_a_pending_deploy_is_explained() -> None:
    state = {"deploy": {"pending": True, "serial": "ab12", "error": "nginx -t failed"}}
    explanation = explain_one("a.example", en(ENTRY), st(state), NOW)
    assert explanation.action == "deploy"
    assert "nginx -t failed" in " ".join(explanation.sentences)


def test_explain_agrees_with_renew_on_a_real_certificate(renew_env: RenewEnv) -> None:
    settings = renew_env.settings(certificates=({"names": ["explained.example"]},))
    renew(renew_env.keystore, settings)
    out = CliRunner().invoke(
        cli,
        ["--keystore", str(renew_env.keystore.root), "explain", "--json"],
        env={"CERTMAN_CONFIG": None},
        catch_exceptions=False,
    )
    assert out.exit_code == 0, out.output
    [entry] = json.loads(out.stdout)["certificates"]
    planned = renew(renew_env.keystore, settings, check=True, clock=lambda: later(0))
    [result] = planned.results
    assert entry["name"] == "explained.example" and entry["action"] == "skip"
    assert entry["renews_at"] == (result.next_renewal.strftime("%Y-%m-%dT%H:%M:%SZ") if result.next_renewal else None)


def test_explain_of_an_unknown_name_is_a_usage_error(renew_env: RenewEnv) -> None:
    out = CliRunner().invoke(
        cli, ["--keystore", str(renew_env.keystore.root), "explain", "nope.example"], env={"CERTMAN_CONFIG": None}
    )
    assert out.exit_code == 2
    assert out.stderr.startswith("certman: no certificate named 'nope.example'")


def test_a_revoked_certificate_is_explained_as_left_alone(renew_env: RenewEnv) -> None:
    from certman.lifecycle import revoke
    from certman.renewal.explain import explain

    settings = renew_env.settings(certificates=({"names": ["gone.example"]},))
    renew(renew_env.keystore, settings)
    revoke(renew_env.keystore, "gone.example", reason="superseded")

    [explanation] = explain(renew_env.keystore, settings=settings, clock=lambda: later(days=3.5))

    assert explanation.action == "skip"
    assert "leaves it alone: it was revoked (superseded)" in explanation.sentences[-1]


def test_a_declared_certificate_not_yet_issued_is_explained(renew_env: RenewEnv) -> None:
    from certman.renewal.explain import explain

    settings = renew_env.settings(certificates=({"names": ["todo.example"]},))

    [explanation] = explain(renew_env.keystore, settings=settings)

    assert explanation.action == "renew"
    assert explanation.sentences[0].startswith("todo.example is declared in certman.toml but not issued yet")
