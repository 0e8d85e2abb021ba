"""POST /apps/{app}/dynos: a one-off's terminal and environment, as Heroku's Platform API takes
them, end up in the attach secret the agent reads (kapal.domain.rendezvous)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.unit.api.test_api import signup

from kapal.api.app import create_api
from kapal.domain.rendezvous import Launch, launch_of
from kapal.services.auth import authenticate
from kapal.services.context import Context
from kapal.services.deploy import release_slug
from kapal.store.models import Dyno, Slug


@pytest.fixture
def api(ctx: Context) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with TestClient(create_api(ctx)) as client:
        auth = signup(client)
        app_id = client.post("/apps", json={"name": "my-app"}, headers=auth).json()["id"]
        user = authenticate(ctx, auth["Authorization"].split()[1])
        with ctx.store.session() as s:
            slug = Slug(app_id=app_id, checksum="SHA256:0", size=1, process_types={"web": "x"})
            s.add(slug)
        release_slug(ctx, app_id, user, slug.id)
        yield client, auth


def create(api: tuple[TestClient, dict[str, str]], **body: Any) -> Any:
    client, auth = api
    return client.post("/apps/my-app/dynos", json={"command": "bash", **body}, headers=auth)


def launch(response: Any) -> Launch:
    assert response.status_code == 201, response.text
    return launch_of(response.json()["attach_url"].rsplit("/", 1)[1])


def test_heroku_cli_body_gets_a_terminal_of_its_size(
    api: tuple[TestClient, dict[str, str]], ctx: Context
) -> None:
    # What Heroku's CLI sends from a terminal: COLUMNS and LINES as numbers.
    env = {"TERM": "xterm", "COLUMNS": 100, "LINES": 30, "FOO": "bar"}
    response = create(api, attach=True, env=env)
    expected = {"TERM": "xterm", "COLUMNS": "100", "LINES": "30", "FOO": "bar"}
    assert launch(response) == Launch((30, 100), expected)
    # Only the hash of the whole secret is stored: the options cannot be swapped.
    secret = response.json()["attach_url"].rsplit("/", 1)[1]
    with ctx.store.session() as s:
        row = s.scalar(select(Dyno).where(Dyno.name == response.json()["name"]))
        assert row is not None
        assert row.attach_hash == hashlib.sha256(secret.encode()).hexdigest()


def test_terminal_choices(api: tuple[TestClient, dict[str, str]]) -> None:
    assert launch(create(api, attach=True)) == Launch((24, 80))
    assert launch(create(api, attach=True, force_no_tty=True)) == Launch()
    assert launch(create(api, attach=True, tty=False, env={"A": "1"})) == Launch(None, {"A": "1"})
    assert launch(create(api, attach=True, tty=True)) == Launch((24, 80))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"attach": True, "tty": True, "force_no_tty": True}, "contradict"),
        ({"attach": True, "env": {"1X": "y"}}, "name '1X' is invalid"),
        ({"attach": True, "env": {"COLUMNS": "wide"}}, "LINES and COLUMNS"),
        ({"attach": True, "env": {"A": "x" * 40000}}, "limited to 32768 bytes"),
        ({"attach": False, "tty": True}, "no terminal"),
        ({"attach": False, "env": {"TERM": "xterm", "B": "1", "A": "2"}}, "yet (A, B)"),
    ],
)
def test_refused(api: tuple[TestClient, dict[str, str]], body: Any, message: str) -> None:
    response = create(api, **body)
    assert response.status_code == 422
    assert response.json()["id"] == "invalid_params"
    assert message in response.json()["message"]


def test_heroku_cli_run_detached_body_is_accepted(api: tuple[TestClient, dict[str, str]]) -> None:
    # Heroku's `run:detached` sends its TERM too; a dyno without a terminal has no use for it.
    response = create(api, attach=False, env={"TERM": "xterm"})
    assert response.status_code == 201
    assert response.json()["attach_url"] is None
