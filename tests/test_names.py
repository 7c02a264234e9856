"""Identifiers are validated and normalised locally, before any network call."""

from __future__ import annotations

import pytest

from certman.config import CertSpec, SolverSpec
from certman.errors import UsageError
from certman.names import Identifier, normalise, normalise_all

SERVER = "https://ca.invalid/directory"


def test_idna2008_keeps_sharp_s_distinct_from_ss() -> None:
    assert normalise("faß.example") == Identifier("dns", "xn--fa-hia.example")


def test_unicode_names_become_a_labels() -> None:
    assert normalise("bücher.example").value == "xn--bcher-kva.example"


def test_names_are_lower_cased() -> None:
    assert normalise("WWW.Example.COM").value == "www.example.com"


def test_a_trailing_dot_is_the_same_name() -> None:
    assert normalise("example.com.").value == "example.com"


def test_duplicates_are_removed_keeping_order() -> None:
    assert [i.value for i in normalise_all(["b.example", "A.example", "B.EXAMPLE", "a.example"])] == [
        "b.example",
        "a.example",
    ]


def test_ipv4_literal_becomes_an_ip_identifier() -> None:
    assert normalise("192.0.2.7") == Identifier("ip", "192.0.2.7")


def test_ipv6_literal_becomes_a_compressed_ip_identifier() -> None:
    assert normalise("2001:db8:0:0:0:0:0:1") == Identifier("ip", "2001:db8::1")


def test_wildcard_as_whole_leftmost_label_is_accepted() -> None:
    assert normalise("*.Example.com") == Identifier("dns", "*.example.com")


def test_label_of_63_characters_is_accepted() -> None:
    assert normalise("a" * 63 + ".example").value == "a" * 63 + ".example"


def test_100_names_are_accepted() -> None:
    assert len(normalise_all(f"n{i}.example" for i in range(100))) == 100


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a" * 64 + ".example",  # label over 63
        ".".join(["a" * 61] * 4) + ".example",  # name over 253
        "a..example",  # empty label
        ".example",  # empty leading label
        "-lead.example",  # leading hyphen
        "trail-.example",  # trailing hyphen
        "a/b.example",  # path separator
        "a\\b.example",
        "../etc.example",
        "a b.example",  # whitespace
        "a\tb.example",
        "a\nb.example",  # newline
        "a\x00b.example",  # NUL
        "a\x07b.example",  # control character
        "$(reboot).example",  # shell metacharacters
        "a;b.example",
        "a|b.example",
        "a`b`.example",
        "a_b.example",  # not a hostname character
        "foo.*.example",  # wildcard not leftmost
        "*.*.example",  # two wildcards
        "f*o.example",  # partial wildcard label
        "*",  # wildcard with no domain
        "ab--cd.example",  # hyphens in 3rd and 4th position
    ],
)
def test_bad_identifier_is_rejected(bad: str) -> None:
    with pytest.raises(UsageError, match="identifier"):
        normalise(bad)


def test_more_than_100_names_are_rejected() -> None:
    with pytest.raises(UsageError, match="101 identifiers"):
        normalise_all(f"n{i}.example" for i in range(101))


def test_wildcard_with_http01_is_an_error_naming_dns01() -> None:
    with pytest.raises(UsageError, match="HTTP-01") as info:
        CertSpec(
            name="wild",
            identifiers=normalise_all(["*.example.com"]),
            server=SERVER,
            solvers=(SolverSpec("standalone"),),
        )
    assert "DNS-01" in (info.value.hint or "")
