"""Which ERROR_PAGE_URL and MAINTENANCE_PAGE_URL values the router can show."""

import pytest

from kapal.domain.errors import InvalidParams
from kapal.domain.pageurls import check_page_url, page_url_problem, usable_page_url


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/error.html",
        "http://example.com:8080/down?x=1#top",
        "HTTPS://EXAMPLE.COM/",
        'https://example.com/"quoted"<tag>',  # legal here: the router escapes it
    ],
)
def test_absolute_http_urls_are_usable(url: str) -> None:
    assert page_url_problem(url) is None
    assert usable_page_url(url) == url
    check_page_url("ERROR_PAGE_URL", url)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("javascript:alert(1)", "http:// or https://"),
        ("data:text/html,hi", "http:// or https://"),
        ("//example.com/x", "http:// or https://"),
        ("https:///path", "with a host"),
        ("/error.html", "http:// or https://"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com/\nSet-Cookie: x", "control characters"),
        ("https:\\\\example.com", "backslashes"),
        ("https://example.com:port/", "not a valid URL"),
        ("https://[::1/", "not a valid URL"),
        ("https://example.com/" + "a" * 2048, "longer than 2048"),
        ("", "http:// or https://"),
    ],
)
def test_other_values_are_refused_with_the_reason(url: str, problem: str) -> None:
    found = page_url_problem(url)
    assert found is not None and problem in found
    assert usable_page_url(url) == ""
    with pytest.raises(InvalidParams, match="MAINTENANCE_PAGE_URL"):
        check_page_url("MAINTENANCE_PAGE_URL", url)


def test_a_stored_value_that_is_not_a_string_is_not_usable() -> None:
    assert usable_page_url(None) == ""
    assert usable_page_url(42) == ""
