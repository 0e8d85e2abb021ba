"""Custom domains' hostnames: what an app may add, and what a certificate name covers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.errors import InvalidParams
from kapal.domain.hostnames import covers, is_apex, validate_hostname


@pytest.mark.parametrize(
    ("given_name", "stored"),
    [
        ("www.example.com", "www.example.com"),
        ("WWW.Example.COM", "www.example.com"),
        ("www.example.com.", "www.example.com"),
        (" example.com ", "example.com"),
        ("*.example.com", "*.example.com"),
        ("a-b.c1.example.co.uk", "a-b.c1.example.co.uk"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("app.localhost.example.com", "app.localhost.example.com"),
    ],
)
def test_valid_hostnames_are_stored_lowercase(given_name: str, stored: str) -> None:
    assert validate_hostname(given_name, "localhost") == stored


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("", "empty"),
        ("http://www.example.com", "no scheme, port or path"),
        ("www.example.com:8080", "no scheme, port or path"),
        ("www.example.com/x", "no scheme, port or path"),
        ("user@example.com", "no scheme, port or path"),
        ("com", "needs a domain"),
        ("-www.example.com", "'-www' is not a DNS label"),
        ("www-.example.com", "'www-' is not a DNS label"),
        ("w_w.example.com", "'w_w' is not a DNS label"),
        ("www..example.com", "'' is not a DNS label"),
        ("www.*.example.com", "'*' is not a DNS label"),
        ("**.example.com", "'**' is not a DNS label"),
        ("*.com", "a wildcard needs a domain below it"),
        ("x" * 64 + ".example.com", "is not a DNS label"),
        (("a" * 60 + ".") * 4 + "example.com", "longer than 253"),
        ("192.168.1.1", "an IP address"),
        ("localhost", "needs a domain"),
        ("demo.localhost", "apps domain"),
        ("*.localhost", "a wildcard needs a domain below it"),
        ("x.demo.localhost", "apps domain"),
    ],
)
def test_invalid_hostnames_are_refused_saying_why(bad: str, says: str) -> None:
    with pytest.raises(InvalidParams) as error:
        validate_hostname(bad, "localhost")
    assert says in error.value.message


def test_names_in_a_dotted_apps_domain_are_the_apps() -> None:
    for taken in ("apps.example.com", "demo.apps.example.com", "*.apps.example.com"):
        with pytest.raises(InvalidParams, match=r"apps domain apps\.example\.com"):
            validate_hostname(taken, "apps.example.com")
    assert validate_hostname("www.example.com", "apps.example.com") == "www.example.com"


def test_a_wildcard_covers_one_label_more() -> None:
    assert covers("www.example.com", "WWW.example.com.")
    assert covers("*.example.com", "www.example.com")
    assert covers("*.example.com", "*.example.com")
    assert not covers("*.example.com", "example.com")
    assert not covers("*.example.com", "a.b.example.com")
    assert not covers("*.example.com", "www.example.org")
    assert not covers("www.example.com", "*.example.com")
    assert not covers("example.com", "www.example.com")


def test_apex_domains() -> None:
    assert is_apex("example.com")
    assert not is_apex("www.example.com")


label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@given(st.lists(label, min_size=1, max_size=5), st.sampled_from(["com", "org", "example"]))
def test_every_valid_hostname_round_trips(labels: list[str], tld: str) -> None:
    hostname = ".".join([*labels, tld])
    assert validate_hostname(hostname.upper(), "localhost") == hostname
    assert validate_hostname(hostname, "localhost") == hostname
    assert covers(hostname, hostname)
    assert covers("*." + hostname.partition(".")[2], hostname)
    assert not covers("*." + hostname, hostname)


@given(st.text(max_size=80))
def test_anything_else_is_stored_valid_or_refused(text: str) -> None:
    try:
        stored = validate_hostname(text, "localhost")
    except InvalidParams:
        return
    assert stored == validate_hostname(stored, "localhost")
    assert stored == stored.lower() and len(stored) <= 253
