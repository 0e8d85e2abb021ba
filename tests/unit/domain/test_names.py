from __future__ import annotations

import pytest

from kapal.domain.errors import InvalidParams
from kapal.domain.names import (
    APP_NAME,
    random_app_name,
    validate_app_name,
    validate_config_key,
    validate_email,
)


@pytest.mark.parametrize("name", ["abc", "my-app-2", "a" * 30, "a1"[0] + "b1"])
def test_valid_app_names(name: str) -> None:
    assert validate_app_name(name) == name


@pytest.mark.parametrize("name", ["ab", "a" * 31, "1app", "app-", "App", "my_app", "", "a b"])
def test_invalid_app_names(name: str) -> None:
    with pytest.raises(InvalidParams, match="invalid"):
        validate_app_name(name)


def test_random_names_look_like_herokus() -> None:
    for _ in range(200):
        name = random_app_name()
        assert APP_NAME.match(name), name
        _adjective, _noun, number = name.split("-")
        assert len(number) == 5 and number.isdigit()


@pytest.mark.parametrize("key", ["1X", "A-B", "", "A B", "Ä"])
def test_invalid_config_keys(key: str) -> None:
    with pytest.raises(InvalidParams):
        validate_config_key(key)


def test_valid_config_keys() -> None:
    for key in ("A", "_A", "DATABASE_URL", "lower_ok9"):
        assert validate_config_key(key) == key


def test_email_is_normalised_and_checked() -> None:
    assert validate_email(" Alice@Example.COM ") == "alice@example.com"
    with pytest.raises(InvalidParams):
        validate_email("not-an-email")
