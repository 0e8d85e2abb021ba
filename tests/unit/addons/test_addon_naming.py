import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.addons.naming import (
    ATTACHMENT_NAME,
    COLORS,
    attachment_prefix,
    config_var,
    default_attachment_name,
    validate_addon_name,
    validate_attachment_name,
)
from kapal.domain.errors import InvalidParams


def test_the_first_database_is_attached_as_database() -> None:
    assert default_attachment_name("kapal-postgresql", set()) == "DATABASE"
    assert default_attachment_name("kapal-postgresql", {"OTHER"}) == "DATABASE"


def test_later_databases_get_a_color_under_the_service_prefix() -> None:
    name = default_attachment_name("kapal-postgresql", {"DATABASE"})
    prefix, _, color = name.rpartition("_")
    assert prefix == "KAPAL_POSTGRESQL"
    assert color in COLORS


def test_heroku_alias_gives_heroku_prefix() -> None:
    name = default_attachment_name("heroku-postgresql", {"DATABASE"}, choose=lambda xs: xs[0])
    assert name == f"HEROKU_POSTGRESQL_{COLORS[0]}"


@given(st.sets(st.sampled_from(COLORS)))
def test_a_color_is_never_reused(used: set[str]) -> None:
    taken = {"DATABASE"} | {f"KAPAL_POSTGRESQL_{c}" for c in used}
    name = default_attachment_name("kapal-postgresql", taken)
    assert name not in taken
    assert ATTACHMENT_NAME.match(name)


def test_all_colors_taken_falls_back_to_numbers() -> None:
    taken = {"DATABASE", "KAPAL_POSTGRESQL_2"} | {f"KAPAL_POSTGRESQL_{c}" for c in COLORS}
    assert default_attachment_name("kapal-postgresql", taken) == "KAPAL_POSTGRESQL_3"


def test_config_var_and_prefix() -> None:
    assert config_var("DATABASE") == "DATABASE_URL"
    assert attachment_prefix("kapal-postgresql") == "KAPAL_POSTGRESQL"


@pytest.mark.parametrize("name", ["postgresql-silent-12345", "my-db", "abc"])
def test_valid_addon_names(name: str) -> None:
    assert validate_addon_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "ab", "My-DB", "1db", "db-", "db_x", 'x"; drop role postgres; --', "a" * 51]
)
def test_invalid_addon_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidParams):
        validate_addon_name(name)


@pytest.mark.parametrize("name", ["database", "DATABASE_URL", "1DB", "DB-2", "", "DB X"])
def test_invalid_attachment_names_are_rejected(name: str) -> None:
    with pytest.raises(InvalidParams):
        validate_attachment_name(name)


def test_valid_attachment_name() -> None:
    assert validate_attachment_name("ANALYTICS_DB") == "ANALYTICS_DB"
