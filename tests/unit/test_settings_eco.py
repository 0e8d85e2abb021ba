"""KAPAL_ECO_SLEEP_AFTER and KAPAL_ECO_QUOTA_HOURS: defaults, values, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapal.settings import Settings


def test_eco_defaults_are_herokus(tmp_path: Path) -> None:
    settings = Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path)})
    assert (settings.eco_sleep_after, settings.eco_quota_hours) == (1800.0, 1000.0)


def test_eco_settings_from_the_environment(tmp_path: Path) -> None:
    env = {"KAPAL_DATA_DIR": str(tmp_path), "KAPAL_ECO_SLEEP_AFTER": "2.5"}
    settings = Settings.from_env({**env, "KAPAL_ECO_QUOTA_HOURS": "0"})
    assert (settings.eco_sleep_after, settings.eco_quota_hours) == (2.5, 0.0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("KAPAL_ECO_SLEEP_AFTER", "0.5"), ("KAPAL_ECO_QUOTA_HOURS", "-1")],
)
def test_eco_settings_that_cannot_work_are_refused(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be at least"):
        Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path), name: value})
