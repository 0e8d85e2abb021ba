from __future__ import annotations

import pytest

from kapal.domain.errors import InvalidParams
from kapal.domain.formation import ScaleChange, normalise_size, parse_scale_arg


def test_scale_grammar() -> None:
    assert parse_scale_arg("web=2") == ScaleChange("web", "=", 2, None)
    assert parse_scale_arg("worker+1") == ScaleChange("worker", "+", 1, None)
    assert parse_scale_arg("web-3") == ScaleChange("web", "-", 3, None)
    assert parse_scale_arg("web=1:Standard-2X") == ScaleChange("web", "=", 1, "standard-2x")


@pytest.mark.parametrize("arg", ["web", "web=", "=2", "web=two", "web=1:huge"])
def test_bad_scale_arguments(arg: str) -> None:
    with pytest.raises(InvalidParams):
        parse_scale_arg(arg)


def test_apply_never_goes_negative() -> None:
    assert parse_scale_arg("web-5").apply(2) == 0
    assert parse_scale_arg("web+2").apply(1) == 3
    assert parse_scale_arg("web=0").apply(7) == 0


def test_size_names_are_case_insensitive() -> None:
    assert normalise_size("Basic") == "basic"
    assert normalise_size("2X") == "standard-2x"
