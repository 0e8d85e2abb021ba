"""A provider's manifest: checks, the prefix of its config vars, the catalog service it is."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.addons.catalog import POSTGRESQL, parse_plan, plan_description
from kapal.addons.manifest import (
    PlanSpec,
    check_base_url,
    check_manifest,
    check_password,
    config_prefix,
    partner_service,
)
from kapal.domain.errors import InvalidParams

PLANS = (PlanSpec("test", "For trying it"), PlanSpec("pro"))


@pytest.mark.parametrize(
    ("ident", "names", "prefix"),
    [
        ("acme-search", ["ACME_URL"], "ACME"),
        ("acme-search", ["ACME_URL", "ACME_TOKEN"], "ACME"),
        ("acme-search", ["ACME_SEARCH_URL", "ACME_SEARCH_API_KEY"], "ACME_SEARCH"),
        ("acme-search", ["ACME_URL", "ACME_SEARCH_URL"], "ACME"),
        ("acme-search", [], "ACME_SEARCH"),
        ("papertrail", [], "PAPERTRAIL"),
    ],
)
def test_the_prefix_is_what_the_vars_share(ident: str, names: list[str], prefix: str) -> None:
    assert config_prefix(ident, names) == prefix


@pytest.mark.parametrize(
    ("ident", "names"),
    [
        ("acme-search", ["ACME_URL", "OTHER_URL"]),
        ("acme-search", ["FOO_URL_X"]),  # the attachment FOO_URL would set FOO_URL_X
        ("acme-url", []),
        ("a" * 30 + "-" + "b" * 33, []),  # too long to name attachments
    ],
)
def test_vars_without_a_usable_common_prefix_are_refused(ident: str, names: list[str]) -> None:
    with pytest.raises(InvalidParams, match="config_vars"):
        config_prefix(ident, names)


_WORD = st.from_regex(r"[A-Z][A-Z0-9]{0,6}", fullmatch=True)


@given(
    words=st.lists(_WORD, min_size=1, max_size=3).filter(lambda w: w[-1] != "URL"),
    names=st.lists(st.from_regex(r"[A-Z0-9]{1,8}", fullmatch=True), min_size=1, max_size=5),
)
def test_a_prefix_and_one_word_each_give_that_prefix(words: list[str], names: list[str]) -> None:
    prefix = "_".join(words)
    assert config_prefix("acme", [f"{prefix}_{name}" for name in dict.fromkeys(names)]) == prefix


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://acme.example.com/heroku/resources/", "https://acme.example.com/heroku/resources"),
        ("http://localhost:9000/heroku/resources", "http://localhost:9000/heroku/resources"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("http://[::1]:9000/x", "http://[::1]:9000/x"),
    ],
)
def test_base_urls_kept_without_a_trailing_slash(url: str, kept: str) -> None:
    assert check_base_url(url) == kept


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/heroku/resources",
        "http://127.0.0.1.nip.io/",
        "https://acme.example.com:notaport/",
        "https:///no-host",
        "acme.example.com",
        "https://user:pw@acme.example.com/",
        "https://acme.example.com/#x",
    ],
)
def test_bad_base_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidParams, match="base_url"):
        check_base_url(url)


def test_passwords_are_long_enough_and_printable() -> None:
    assert check_password("a" * 8) == "a" * 8
    for bad in ("short", "x" * 201, "with\nnewline"):
        with pytest.raises(InvalidParams, match="password"):
            check_password(bad)


def test_a_manifest_becomes_a_partner_service() -> None:
    manifest = check_manifest(
        "acme-search", None, "https://acme.example.com/r", PLANS, ("ACME_URL", "ACME_TOKEN")
    )
    assert manifest.name == "acme-search"  # the id when no name is given
    service = partner_service(manifest)
    assert (service.name, service.slug, service.partner) == ("acme-search", "acme-search", True)
    assert service.default_plan == "test"
    assert service.primary_attachment == "ACME"
    assert [plan_description(p) for p in service.plans] == ["For trying it", ""]
    choice = parse_plan("acme-search:pro", [service])
    assert (choice.service, choice.plan.name, choice.plan_name) == (
        service,
        "pro",
        "acme-search:pro",
    )
    with pytest.raises(InvalidParams, match="acme-search:test"):
        parse_plan("acme-search:enterprise", [service])
    with pytest.raises(InvalidParams, match="Couldn't find add-on service"):
        parse_plan("acme-search:test")  # unknown without the registered providers


def test_long_ids_make_short_add_on_names() -> None:
    ident = "a" * 29 + "-" + "b" * 34
    manifest = check_manifest(ident, None, "https://a.example.com", PLANS, ["LONG_URL"])
    service = partner_service(manifest)
    assert service.slug == "a" * 29
    assert service.primary_attachment == "LONG"


def test_attachments_set_the_partners_vars_and_the_url_of_kapals_own() -> None:
    service = partner_service(
        check_manifest("acme-search", None, "https://a.example.com", PLANS, ("ACME_URL",))
    )
    config = {"URL": "http://acme/1", "TOKEN": "t"}
    assert service.attachment_config("ACME", config) == {
        "ACME_URL": "http://acme/1",
        "ACME_TOKEN": "t",
    }
    assert service.attachment_vars("SEARCH", config) == ["SEARCH_URL", "SEARCH_TOKEN"]
    own = {"URL": "postgres://x", "ROTATING_URL": "postgres://y"}
    assert POSTGRESQL.attachment_config("DATABASE", own) == {"DATABASE_URL": "postgres://x"}
    assert POSTGRESQL.attachment_vars("DATABASE", {}) == ["DATABASE_URL"]
