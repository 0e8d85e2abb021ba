"""/apps/{app}/log-drains through the real ASGI app: Heroku's shape, URL checks, tokens,
access, and log sessions that search (grep, since) stored for the agent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.unit.api.test_api import signup

from kapal.entrypoints.agent_store import AgentStore
from kapal.services.context import Context
from kapal.store.models import LogSession

DRAINS = "/apps/my-app/log-drains"


def make_app(client: TestClient, email: str = "ann@example.com") -> dict[str, str]:
    auth = signup(client, email)
    assert client.post("/apps", json={"name": "my-app"}, headers=auth).status_code == 201
    return auth


def test_drains_are_added_listed_found_and_removed(client: TestClient, ctx: Context) -> None:
    auth = make_app(client)
    assert client.get(DRAINS, headers=auth).json() == []
    added = client.post(DRAINS, json={"url": "syslog+tls://logs.example.com:6514"}, headers=auth)
    assert added.status_code == 201, added.text
    drain = added.json()
    assert drain["url"] == "syslog+tls://logs.example.com:6514"
    assert drain["token"].startswith("d.") and len(drain["token"]) == 38
    assert drain["addon"] is None and drain["app"]["name"] == "my-app"
    https = client.post(DRAINS, json={"url": "https://u:secret@example.com/in"}, headers=auth)
    assert https.status_code == 201
    assert [d["id"] for d in client.get(DRAINS, headers=auth).json()] == [
        drain["id"],
        https.json()["id"],
    ]
    for ident in (drain["id"], drain["token"], drain["url"]):
        assert client.get(f"{DRAINS}/{ident}", headers=auth).json()["id"] == drain["id"]

    # What the agent reads to deliver.
    store = AgentStore(ctx.settings.database_url)
    try:
        apps, specs = store.log_targets()
    finally:
        store.close()
    assert len(apps) == 1
    assert [(s.url, s.token) for s in specs] == [
        (drain["url"], drain["token"]),
        ("https://u:secret@example.com/in", https.json()["token"]),
    ]

    removed = client.delete(f"{DRAINS}/{drain['token']}", headers=auth)
    assert removed.status_code == 200 and removed.json()["id"] == drain["id"]
    gone = client.delete(f"{DRAINS}/{drain['token']}", headers=auth)
    assert gone.status_code == 404 and gone.json()["id"] == "not_found"
    # By URL, slashes and all.
    by_url = client.delete(f"{DRAINS}/https://u:secret@example.com/in", headers=auth)
    assert by_url.status_code == 200
    assert "secret" not in gone.text


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://example.com/x",
        "syslog://example.com",  # no port
        "syslog://example.com:99999",
        "syslog://example.com:514/path",
        "https://",
        "https://exa mple.com/",
        "https://example.com/\x00",
        "https://example.com/" + "x" * 3000,
    ],
)
def test_unusable_drain_urls_are_refused_with_a_message(client: TestClient, url: str) -> None:
    auth = make_app(client)
    refused = client.post(DRAINS, json={"url": url}, headers=auth)
    assert refused.status_code == 422, refused.text
    assert refused.json()["id"] == "invalid_params" and refused.json()["message"]


def test_a_drain_is_added_once_and_at_most_five(client: TestClient) -> None:
    auth = make_app(client)
    assert client.post(DRAINS, json={"url": "syslog://h:1"}, headers=auth).status_code == 201
    again = client.post(DRAINS, json={"url": "syslog://h:1"}, headers=auth)
    assert again.status_code == 422 and "already" in again.json()["message"]
    for port in range(2, 6):
        assert client.post(DRAINS, json={"url": f"syslog://h:{port}"}, headers=auth).is_success
    sixth = client.post(DRAINS, json={"url": "syslog://h:6"}, headers=auth)
    assert sixth.status_code == 422 and "at most 5" in sixth.json()["message"]


def test_other_users_cannot_see_or_touch_an_apps_drains(client: TestClient) -> None:
    auth = make_app(client)
    drain = client.post(DRAINS, json={"url": "https://u:pw@example.com/"}, headers=auth).json()
    eve = signup(client, "eve@example.com")
    assert client.get(DRAINS, headers=eve).status_code in (403, 404)
    assert client.post(DRAINS, json={"url": "syslog://h:1"}, headers=eve).status_code in (403, 404)
    assert client.delete(f"{DRAINS}/{drain['id']}", headers=eve).status_code in (403, 404)
    assert client.get(DRAINS).status_code == 401
    assert len(client.get(DRAINS, headers=auth).json()) == 1


def test_a_log_session_can_search(client: TestClient, ctx: Context) -> None:
    auth = make_app(client)
    body = {"lines": 5000, "grep": "H12", "since": "2026-11-27T08:00:00Z", "dyno": "router"}
    created = client.post("/apps/my-app/log-sessions", json=body, headers=auth)
    assert created.status_code == 201, created.text
    secret = created.json()["logplex_url"].rsplit("/", 1)[1]
    store = AgentStore(ctx.settings.database_url)
    try:
        session = store.log_session(secret)
    finally:
        store.close()
    assert session is not None
    assert (session.grep, session.lines, session.dyno) == ("H12", 5000, "router")
    assert session.since == datetime(2026, 11, 27, 8, tzinfo=UTC).timestamp()
    with ctx.store.session() as s:
        assert s.scalars(select(LogSession)).one().grep == "H12"


@pytest.mark.parametrize(
    "body",
    [
        {"grep": "x" * 201},
        {"grep": "a\nb"},
        {"since": "yesterday"},
        {"since": "2026-11-27T08:00:00"},  # no offset: ambiguous
    ],
)
def test_bad_searches_are_refused(client: TestClient, body: dict[str, str]) -> None:
    auth = make_app(client)
    refused = client.post("/apps/my-app/log-sessions", json=body, headers=auth)
    assert refused.status_code == 422, refused.text
