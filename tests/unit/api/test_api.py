"""The Platform API through its real ASGI app: JSON shapes, auth, errors, ranges."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from kapal.services.auth import authenticate
from kapal.services.context import Context
from kapal.services.deploy import release_slug
from kapal.store.models import Dyno, Formation, Slug


def signup(client: TestClient, email: str = "ann@example.com") -> dict[str, str]:
    response = client.post("/signup", json={"email": email, "password": "password123"})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']['token']}"}


def test_signup_login_account_logout(client: TestClient) -> None:
    auth = signup(client)
    assert client.get("/account", headers=auth).json()["email"] == "ann@example.com"
    basic = base64.b64encode(b"ann@example.com:password123").decode()
    login = client.post("/oauth/authorizations", headers={"Authorization": f"Basic {basic}"})
    assert login.status_code == 201
    token = login.json()["access_token"]["token"]
    second = {"Authorization": f"Bearer {token}"}
    assert client.get("/account", headers=second).status_code == 200
    assert client.delete("/oauth/authorizations/current", headers=second).status_code == 200
    revoked = client.get("/account", headers=second)
    assert revoked.status_code == 401
    assert revoked.json() == {"id": "unauthorized", "message": "Invalid credentials provided."}
    wrong = base64.b64encode(b"ann@example.com:nope").decode()
    assert (
        client.post(
            "/oauth/authorizations", headers={"Authorization": f"Basic {wrong}"}
        ).status_code
        == 401
    )


def test_app_json_is_heroku_shaped(client: TestClient) -> None:
    auth = signup(client)
    created = client.post("/apps", json={"name": "my-app"}, headers=auth)
    assert created.status_code == 201
    app = created.json()
    assert app["name"] == "my-app"
    assert app["web_url"] == "http://my-app.localhost:8080/"
    assert app["git_url"] == "http://localhost:5000/my-app.git"
    assert app["owner"]["email"] == "ann@example.com"
    assert {"id", "created_at", "updated_at", "stack", "region", "maintenance"} <= app.keys()
    assert [a["name"] for a in client.get("/apps", headers=auth).json()] == ["my-app"]
    unnamed = client.post("/apps", headers=auth)
    assert unnamed.status_code == 201 and unnamed.json()["name"].count("-") == 2


def test_errors(client: TestClient) -> None:
    auth = signup(client)
    other = signup(client, "bob@example.com")
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    assert client.get("/apps/nope", headers=auth).json() == {
        "id": "not_found",
        "message": "Couldn't find that app.",
    }
    assert client.get("/apps/my-app", headers=other).status_code == 403
    assert client.get("/apps").status_code == 401
    bad_json = client.post(
        "/apps", content=b"{", headers={**auth, "Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400 and bad_json.json()["id"] == "bad_request"
    bad_name = client.post("/apps", json={"name": "Bad"}, headers=auth)
    assert bad_name.status_code == 422 and bad_name.json()["id"] == "invalid_params"
    assert client.post("/apps", json={"name": "my-app"}, headers=auth).status_code == 409
    bad_type = client.post("/apps", json={"name": 5}, headers=auth)
    assert bad_type.status_code == 422


def test_config_vars_and_releases_with_range(client: TestClient) -> None:
    auth = signup(client)
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    patched = client.patch("/apps/my-app/config-vars", json={"A": "1", "B": "2"}, headers=auth)
    assert patched.json() == {"A": "1", "B": "2"}
    assert client.patch("/apps/my-app/config-vars", json={"A": None}, headers=auth).json() == {
        "B": "2"
    }
    assert client.patch("/apps/my-app/config-vars", json={"B": 3}, headers=auth).status_code == 422

    releases = client.get("/apps/my-app/releases", headers=auth).json()
    assert [(r["version"], r["description"]) for r in releases] == [
        (1, "Initial release"),
        (2, "Enable Logplex"),
        (3, "Set A, B config vars"),
        (4, "Remove A config vars"),
    ]
    assert [r["current"] for r in releases] == [False, False, False, True]
    latest = client.get(
        "/apps/my-app/releases", headers={**auth, "Range": "version ..; order=desc,max=1"}
    )
    assert latest.status_code == 206
    assert [r["version"] for r in latest.json()] == [4]
    assert client.get("/apps/my-app/releases/v3", headers=auth).json()["version"] == 3

    rolled = client.post("/apps/my-app/releases", json={"release": "3"}, headers=auth)
    assert rolled.status_code == 201 and rolled.json()["description"] == "Rollback to v3"
    assert client.get("/apps/my-app/config-vars", headers=auth).json() == {"A": "1", "B": "2"}


def test_formation_and_dynos(client: TestClient, ctx: Context) -> None:
    auth = signup(client)
    app_id = client.post("/apps", json={"name": "my-app"}, headers=auth).json()["id"]
    user = authenticate(ctx, auth["Authorization"].split()[1])
    with ctx.store.session() as s:
        slug = Slug(app_id=app_id, checksum="SHA256:0", size=1, process_types={"web": "gunicorn"})
        s.add(slug)
    release_slug(ctx, app_id, user, slug.id)

    [web] = client.get("/apps/my-app/formation", headers=auth).json()
    assert (web["type"], web["quantity"], web["size"], web["command"]) == (
        "web",
        1,
        "Eco",
        "gunicorn",
    )
    scaled = client.patch(
        "/apps/my-app/formation",
        json={"updates": [{"type": "web", "quantity": "2", "size": "standard-2x"}]},
        headers=auth,
    )
    assert scaled.status_code == 200
    assert (scaled.json()[0]["quantity"], scaled.json()[0]["size"]) == (2, "Standard-2X")
    bad = client.patch(
        "/apps/my-app/formation",
        json={"updates": [{"type": "worker", "quantity": 1}]},
        headers=auth,
    )
    assert bad.status_code == 404
    assert bad.json()["id"] == "not_found"
    assert bad.json()["message"].startswith("Couldn't find that process type (worker).")

    run = client.post("/apps/my-app/dynos", json={"command": "ls", "attach": True}, headers=auth)
    assert run.status_code == 201
    assert run.json()["attach_url"].startswith("rendezvous://localhost:5002/")
    assert run.json()["name"].startswith("run.")
    assert [d["type"] for d in client.get("/apps/my-app/dynos", headers=auth).json()] == ["run"]
    assert client.delete("/apps/my-app/dynos", headers=auth).status_code == 202


def test_log_session_url(client: TestClient) -> None:
    auth = signup(client)
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    session = client.post("/apps/my-app/log-sessions", json={"tail": True}, headers=auth)
    assert session.status_code == 201
    url = session.json()["logplex_url"]
    assert url.startswith("http://localhost:5001/sessions/") and url.endswith("?tail=true")
    too_many = client.post("/apps/my-app/log-sessions", json={"lines": 20_000}, headers=auth)
    assert too_many.status_code == 422


def test_restart_targets_and_maintenance(client: TestClient, ctx: Context) -> None:
    auth = signup(client)
    app_id = client.post("/apps", json={"name": "my-app"}, headers=auth).json()["id"]
    user = authenticate(ctx, auth["Authorization"].split()[1])
    with ctx.store.session() as s:
        slug = Slug(
            app_id=app_id, checksum="SHA256:0", size=1, process_types={"web": "a", "worker": "b"}
        )
        s.add(slug)
    release_slug(ctx, app_id, user, slug.id)
    assert client.delete("/apps/my-app/dynos/worker", headers=auth).status_code == 202
    missing = client.delete("/apps/my-app/dynos/nothing.1", headers=auth)
    assert missing.status_code == 404 and missing.json()["id"] == "not_found"
    run = client.post("/apps/my-app/dynos", json={"command": "ls"}, headers=auth).json()
    assert client.delete(f"/apps/my-app/dynos/{run['id']}", headers=auth).status_code == 202

    on = client.patch("/apps/my-app", json={"maintenance": True}, headers=auth)
    assert on.status_code == 200 and on.json()["maintenance"] is True
    assert client.get("/apps/my-app", headers=auth).json()["maintenance"] is True


def test_oversized_json_is_refused(client: TestClient) -> None:
    auth = signup(client)
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    huge = {"K": "x" * (1024 * 1024 + 1)}
    response = client.patch("/apps/my-app/config-vars", json=huge, headers=auth)
    assert response.status_code == 413
    assert client.get("/apps/my-app/config-vars", headers=auth).json() == {}


def test_log_session_filters_are_validated(client: TestClient) -> None:
    auth = signup(client)
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    for dyno in ("web.1", "web", "router"):
        ok = client.post("/apps/my-app/log-sessions", json={"dyno": dyno}, headers=auth)
        assert ok.status_code == 201
    bad = client.post("/apps/my-app/log-sessions", json={"dyno": "x" * 200}, headers=auth)
    assert bad.status_code == 422
    source = client.post("/apps/my-app/log-sessions", json={"source": "nope"}, headers=auth)
    assert source.status_code == 422


def test_stop_dynos_and_process_types(client: TestClient, ctx: Context) -> None:
    auth = signup(client)
    app_id = client.post("/apps", json={"name": "my-app"}, headers=auth).json()["id"]
    user = authenticate(ctx, auth["Authorization"].split()[1])
    with ctx.store.session() as s:
        slug = Slug(app_id=app_id, checksum="SHA256:0", size=1, process_types={"web": "gunicorn"})
        s.add(slug)
    release_slug(ctx, app_id, user, slug.id)
    with ctx.store.session() as s:
        # What the agent writes for a running web dyno and a one-off that runs.
        for name, type_ in (("web.1", "web"), ("run.1234", "run")):
            s.add(
                Dyno(
                    app_id=app_id,
                    name=name,
                    type=type_,
                    command="x",
                    release_version=2,
                    state="up",
                )
            )
    waiting = client.post(
        "/apps/my-app/dynos", json={"command": "ls", "attach": True}, headers=auth
    )

    web = client.post("/apps/my-app/dynos/web.1/actions/stop", headers=auth)
    assert web.status_code == 202 and web.json()["name"] == "web.1"
    run = client.post("/apps/my-app/dynos/run.1234/actions/stop", headers=auth)
    assert run.status_code == 202
    # The agent stops both (the web dyno gets a successor, the one-off ends).
    with ctx.store.session() as s:
        asked = {d.name: d.restart_at for d in s.scalars(select(Dyno))}
    assert asked["web.1"] is not None and asked["run.1234"] is not None
    # A one-off nobody attached to yet is simply gone.
    name = waiting.json()["name"]
    assert client.post(f"/apps/my-app/dynos/{name}/actions/stop", headers=auth).status_code == 202
    assert name not in {d["name"] for d in client.get("/apps/my-app/dynos", headers=auth).json()}
    missing = client.post("/apps/my-app/dynos/web.9/actions/stop", headers=auth)
    assert missing.status_code == 404 and missing.json()["message"] == (
        "Couldn't find that dyno (web.9)."
    )

    with ctx.store.session() as s:
        before = s.scalars(select(Formation)).one().restarted_at
    assert client.post("/apps/my-app/formations/web/actions/stop", headers=auth).status_code == 202
    with ctx.store.session() as s:
        assert s.scalars(select(Formation)).one().restarted_at > before
    assert client.post("/apps/my-app/formations/run/actions/stop", headers=auth).status_code == 202
    unknown = client.post("/apps/my-app/formations/clock/actions/stop", headers=auth)
    assert unknown.status_code == 404 and unknown.json()["id"] == "not_found"


def test_crashed_dynos_say_when_they_restart(client: TestClient, ctx: Context) -> None:
    auth = signup(client)
    app_id = client.post("/apps", json={"name": "my-app"}, headers=auth).json()["id"]
    retry = datetime(2026, 11, 27, 10, 0, 9, tzinfo=UTC)
    with ctx.store.session() as s:
        for name, state in (("web.1", "crashed"), ("web.2", "up")):
            s.add(
                Dyno(
                    app_id=app_id,
                    name=name,
                    type="web",
                    command="x",
                    release_version=1,
                    state=state,
                    restart_at=retry,
                )
            )
    dynos = client.get("/apps/my-app/dynos", headers=auth).json()
    assert [(d["name"], d["state"], d["restart_at"]) for d in dynos] == [
        ("web.1", "crashed", "2026-11-27T10:00:09Z"),
        ("web.2", "up", None),
    ]
