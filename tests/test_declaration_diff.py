"""What differs between two records of a certificate, and which differences order a new one."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from certman.config import CertSpec, SolverSpec
from certman.declaration.change import SpecChange, apply_change, reloader_tables
from certman.declaration.diff import diff_specs
from certman.errors import UsageError
from certman.names import normalise_all

SPEC = CertSpec(
    name="a.example",
    identifiers=normalise_all(["a.example", "b.example"]),
    server="https://ca.example/dir",
    solvers=(SolverSpec("standalone", {"address": "127.0.0.1", "port": 80}),),
    reloaders=({"name": "command", "argv": [shutil.which("true")]},),
)


def test_the_order_of_the_identifiers_is_no_change():
    assert diff_specs(SPEC, replace(SPEC, identifiers=normalise_all(["b.example", "a.example"]))).changes == ()


@pytest.mark.parametrize(
    ("field", "value"),
    [("key_type", "rsa2048"), ("server", "https://other.example/dir"), ("profile", "short"), ("preferred_chain", "X")],
)
def test_a_field_of_the_certificate_itself_re_issues(field, value):
    diff = diff_specs(SPEC, replace(SPEC, **{field: value}))
    assert diff.reissue and diff.fields == (field,)


def test_an_added_identifier_re_issues_and_names_it():
    diff = diff_specs(SPEC, replace(SPEC, identifiers=normalise_all(["a.example", "c.example"])))
    assert diff.summary() == "re-issue: identifiers changed (added c.example; removed b.example)"


def test_solver_reloader_and_renew_window_only_update_the_record():
    after = apply_change(
        SPEC,
        SpecChange(solver_options=("standalone", {"port": 8402}), renew_before_days=20, remove_reloaders=("command",)),
    )
    diff = diff_specs(SPEC, after)
    assert diff.summary() == "record updated: solvers, reloaders, renew_before_days; no re-issue"
    assert diff.reloaders_changed and not diff.reissue


def test_a_bare_program_name_is_no_change_from_its_resolved_path():
    assert diff_specs(SPEC, replace(SPEC, reloaders=({"name": "command", "argv": ["true"]},))).changes == ()


def test_a_given_reloader_replaces_the_stored_one_of_its_kind_and_keeps_the_others():
    nginx = {"name": "nginx", "verify": "127.0.0.1:443"}
    after = apply_change(SPEC, SpecChange(reloaders=(nginx,)))
    assert [r["name"] for r in after.reloaders] == ["command", "nginx"]
    again = apply_change(after, SpecChange(reloaders=({"name": "nginx", "prefix": "/srv"},)))
    assert again.reloaders[1] == {"name": "nginx", "prefix": "/srv"}


def test_reloader_options_are_typed_and_repeated_keys_are_lists():
    [table] = reloader_tables(["nginx"], ["verify=127.0.0.1:443", "verify=127.0.0.1:8443", "timeout=5"])
    assert table == {"name": "nginx", "verify": ["127.0.0.1:443", "127.0.0.1:8443"], "timeout": 5}


def test_an_unprefixed_reloader_option_with_two_reloaders_is_a_usage_error():
    with pytest.raises(UsageError, match="names no reloader"):
        reloader_tables(["nginx", "command"], ["verify=127.0.0.1:443"])


def test_an_empty_solver_address_is_shown_quoted_not_as_a_bare_equals_sign():
    after = apply_change(SPEC, SpecChange(solver_options=("standalone", {"address": ""})))
    [change] = diff_specs(SPEC, after).changes
    assert change.describe() == 'solvers: standalone(address=127.0.0.1, port=80) -> standalone(address="", port=80)'
