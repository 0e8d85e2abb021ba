import pytest

from kapal.router.codes import (
    H10,
    H14,
    H80,
    H81,
    H82,
    PROXY,
    WAIT,
    WAKE,
    RouterError,
    Verdict,
    decide,
)
from kapal.router.routes import AppRoute, UpDyno

UP = (UpDyno("web.1", 5001),)


def route(**fields: object) -> AppRoute:
    base: dict[str, object] = {"app_id": "a1", "name": "demo", "web_quantity": 1}
    base.update(fields)
    return AppRoute(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"up": UP}, PROXY),
        ({"up": UP, "crashed": 2, "starting": 1}, PROXY),
        ({"maintenance": True, "up": UP}, H80),
        ({"maintenance": True, "deployed": False}, H80),
        ({"deployed": False, "up": UP}, H81),
        ({"web_quantity": 0}, H14),
        ({"web_quantity": 0, "up": UP}, H14),
        ({"crashed": 1}, H10),
        ({"crashed": 1, "starting": 1}, WAIT),
        ({"starting": 2}, WAIT),
        ({}, WAIT),  # formation says 1 but the agent has not created the dyno yet
        ({"idle": 1}, WAKE),  # eco dynos asleep: hold the request and wake them
        ({"idle": 1, "starting": 1}, WAIT),  # being woken
        ({"idle": 1, "up": UP}, PROXY),
        ({"eco_exhausted": True, "idle": 1}, H82),
        ({"eco_exhausted": True, "up": UP}, H82),
        ({"eco_exhausted": True, "maintenance": True}, H80),
    ],
)
def test_decide(state: dict[str, object], expected: RouterError | Verdict) -> None:
    assert decide(route(**state)) is expected


def test_error_pages_and_statuses() -> None:
    assert (H10.status, H10.page, H10.level) == (503, "application-error", "error")
    assert (H80.page, H80.level) == ("maintenance", "info")
    assert (H81.page, H81.level, H81.desc) == ("blank-app", "info", "Blank app")
    assert H14.desc == "No web processes running"


def test_a_used_up_eco_quota_is_heroku_s_h82_at_info() -> None:
    assert (H82.code, H82.status, H82.level) == ("H82", 503, "info")
    assert H82.page == "application-error"
