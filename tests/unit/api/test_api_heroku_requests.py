"""Requests the Heroku CLI sends that Kapal's own CLI does not: `heroku apps`, `apps:info`,
`releases:info`, `addons:info DATABASE` and `ps:scale web+1`."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.unit.api.test_api import signup

from kapal.services.auth import authenticate
from kapal.services.context import Context
from kapal.services.deploy import release_slug
from kapal.store.models import Addon, Attachment, Slug, User


def _user(ctx: Context, auth: dict[str, str]) -> User:
    return authenticate(ctx, auth["Authorization"].split()[1])


def _deploy(ctx: Context, auth: dict[str, str], app_id: str, size: int = 1) -> None:
    types = {"web": "gunicorn", "worker": "celery"}
    with ctx.store.session() as s:
        slug = Slug(app_id=app_id, checksum="SHA256:0", size=size, process_types=types)
        s.add(slug)
    release_slug(ctx, app_id, _user(ctx, auth), slug.id)


def test_users_apps_lists_the_users_own_apps_as_get_apps(client: TestClient) -> None:
    auth = signup(client)
    other = signup(client, "bob@example.com")
    for name in ("my-app", "a-app"):
        assert client.post("/apps", json={"name": name}, headers=auth).status_code == 201
    client.post("/apps", json={"name": "bobs-app"}, headers=other)
    me = client.get("/account", headers=auth).json()

    listed = client.get("/users/~/apps", headers=auth)
    assert listed.status_code == 200 and "Next-Range" not in listed.headers
    assert [a["name"] for a in listed.json()] == ["a-app", "my-app"]
    assert listed.json() == client.get("/apps", headers=auth).json()
    assert {a["owner"]["email"] for a in listed.json()} == {"ann@example.com"}
    for who in (me["id"], "ann@example.com", "Ann@Example.com"):
        assert client.get(f"/users/{who}/apps", headers=auth).json() == listed.json()

    bob = client.get("/account", headers=other).json()
    for who in (bob["id"], "bob@example.com", "nobody@example.com"):
        hidden = client.get(f"/users/{who}/apps", headers=auth)
        assert hidden.status_code == 404
        assert hidden.json() == {"id": "not_found", "message": "Couldn't find that user."}
    assert client.get("/users/~/apps").status_code == 401


def test_app_json_has_the_sizes_and_fields_apps_info_reads(
    client: TestClient, ctx: Context
) -> None:
    auth = signup(client)
    app_id = client.post("/apps", json={"name": "my-app"}, headers=auth).json()["id"]
    fresh = client.get("/apps/my-app", headers=auth).json()
    assert fresh["repo_size"] is None and fresh["slug_size"] is None  # present, null
    assert {
        "create_status": "complete",
        "acm": False,
        "archived_at": None,
        "internal_routing": None,
        "space": None,
        "team": None,
    }.items() <= fresh.items()
    assert fresh["git_url"] == "http://localhost:5000/my-app.git"

    repo = ctx.settings.repos_dir / "my-app.git"
    (repo / "objects" / "pack").mkdir(parents=True)
    (repo / "HEAD").write_bytes(b"x" * 23)
    (repo / "objects" / "pack" / "pack-1.pack").write_bytes(b"y" * 1000)
    _deploy(ctx, auth, app_id, size=45_678)

    info = client.get("/apps/my-app", headers=auth).json()
    assert (info["repo_size"], info["slug_size"]) == (1023, 45_678)
    # Lists skip the walk of each repository; the slug's size costs nothing.
    [listed] = client.get("/apps", headers=auth).json()
    assert (listed["repo_size"], listed["slug_size"]) == (None, 45_678)


def test_a_releases_config_vars_are_those_it_ran_with(client: TestClient) -> None:
    auth = signup(client)
    client.post("/apps", json={"name": "my-app"}, headers=auth)
    client.patch("/apps/my-app/config-vars", json={"A": "1", "B": "x=y"}, headers=auth)
    client.patch("/apps/my-app/config-vars", json={"A": None}, headers=auth)
    v3 = client.get("/apps/my-app/releases/3", headers=auth).json()

    assert client.get("/apps/my-app/releases/1/config-vars", headers=auth).json() == {}
    for ident in ("3", "v3", v3["id"]):
        got = client.get(f"/apps/my-app/releases/{ident}/config-vars", headers=auth)
        assert got.status_code == 200 and got.json() == {"A": "1", "B": "x=y"}
    assert client.get("/apps/my-app/releases/4/config-vars", headers=auth).json() == {"B": "x=y"}

    missing = client.get("/apps/my-app/releases/9/config-vars", headers=auth)
    assert missing.status_code == 404 and missing.json()["id"] == "not_found"
    stranger = signup(client, "bob@example.com")
    denied = client.get("/apps/my-app/releases/3/config-vars", headers=stranger)
    assert denied.status_code == 403 and denied.json()["id"] == "forbidden"


def test_relative_quantities_scale_from_the_current_one(client: TestClient, ctx: Context) -> None:
    auth = signup(client)
    app_id = client.post("/apps", json={"name": "my-app"}, headers=auth).json()["id"]
    _deploy(ctx, auth, app_id)

    def scale(*updates: dict[str, object]) -> list[tuple[str, int, str]]:
        response = client.patch(
            "/apps/my-app/formation", json={"updates": list(updates)}, headers=auth
        )
        assert response.status_code == 200, response.text
        return [(f["type"], f["quantity"], f["size"]) for f in response.json()]

    # What `heroku ps:scale web+1` sends, on an eco app: Kapal has no one-per-type cap.
    assert scale({"type": "web", "quantity": "+1"}) == [("web", 2, "Eco")]
    assert scale({"type": "web", "quantity": "-1"}, {"type": "worker", "quantity": "+2"}) == [
        ("web", 1, "Eco"),
        ("worker", 2, "Eco"),
    ]
    assert scale({"type": "worker", "quantity": "+1"}, {"type": "worker", "quantity": "+1"}) == [
        ("worker", 4, "Eco")
    ]
    # Below zero stops at zero, as `kapal ps:scale web-5` computes it.
    assert scale({"type": "web", "quantity": "-5"}) == [("web", 0, "Eco")]
    assert scale({"type": "web", "quantity": "3"}, {"type": "worker", "quantity": 0}) == [
        ("web", 3, "Eco"),
        ("worker", 0, "Eco"),
    ]
    one = client.patch("/apps/my-app/formation/web", json={"quantity": "+1"}, headers=auth)
    assert one.json()["quantity"] == 4

    for bad in ("+", "1+", "+-1", "two", "+101"):
        response = client.patch(
            "/apps/my-app/formation",
            json={"updates": [{"type": "web", "quantity": bad}]},
            headers=auth,
        )
        assert response.status_code == 422, bad
        assert response.json()["id"] == "invalid_params"
    formation = client.get("/apps/my-app/formation", headers=auth).json()
    assert [(f["type"], f["quantity"]) for f in formation] == [("web", 4), ("worker", 0)]


def _addon(ctx: Context, app_id: str, name: str, attachments: dict[str, str]) -> Addon:
    """A provisioned Postgres add-on row attached as {attachment name: app id}."""
    with ctx.store.session() as s:
        addon = Addon(
            name=name,
            app_id=app_id,
            service="heroku-postgresql",
            plan="essential-0",
            state="provisioned",
            config={"URL": "postgres://u:p@localhost:5432/d"},
        )
        s.add(addon)
        s.flush()
        for attachment, attached_to in attachments.items():
            s.add(Attachment(addon_id=addon.id, app_id=attached_to, name=attachment))
    return addon


def test_addons_resolve_by_id_name_attachment_or_config_var(
    client: TestClient, ctx: Context
) -> None:
    auth = signup(client)
    app_id = client.post("/apps", json={"name": "my-app"}, headers=auth).json()["id"]
    other_id = client.post("/apps", json={"name": "other-app"}, headers=auth).json()["id"]
    db = _addon(ctx, app_id, "postgresql-steep-1", {"DATABASE": app_id, "REPORTS": other_id})
    _addon(ctx, other_id, "postgresql-calm-2", {"DATABASE": other_id})

    def resolve(addon: str, app: str | None, **extra: str) -> list[str]:
        body = {"addon": addon, "app": app, **extra}
        response = client.post("/actions/addons/resolve", json=body, headers=auth)
        if response.status_code == 404:
            assert response.json() == {"id": "not_found", "message": "Couldn't find that add-on."}
            return []
        assert response.status_code == 200, response.text
        return [a["name"] for a in response.json()]

    steep = ["postgresql-steep-1"]
    for app in ("my-app", None):
        assert resolve(db.id, app) == resolve("postgresql-steep-1", app) == steep
    assert resolve("DATABASE", "my-app") == resolve("DATABASE_URL", "my-app") == steep
    assert resolve("DATABASE", "other-app") == ["postgresql-calm-2"]
    assert resolve("REPORTS_URL", "other-app") == resolve("other-app::REPORTS", None) == steep
    assert resolve("DATABASE", None) == resolve("REPORTS", "my-app") == []
    assert resolve("DATABASE", "my-app", addon_service="heroku-postgresql") == steep
    assert resolve("DATABASE", "my-app", addon_service="kapal-redis") == []

    # What `heroku addons:info DATABASE` prints comes from this JSON.
    [found] = client.post(
        "/actions/addons/resolve", json={"addon": "DATABASE", "app": "my-app"}, headers=auth
    ).json()
    assert found["id"] == db.id and found["app"]["name"] == "my-app"
    assert found["plan"]["name"] == "heroku-postgresql:essential-0"
    assert found["plan"]["price"]["cents"] == found["billed_price"]["cents"] == 0
    assert found["billed_price"]["contract"] is False
    assert found["state"] == "provisioned" and found["created_at"]
    assert found["addon_service"]["human_name"] == "Kapal Postgres"
    assert client.get(f"/addons/{db.id}", headers=auth).json() == found
    attachments = client.get(f"/addons/{db.id}/addon-attachments", headers=auth).json()
    assert sorted((a["app"]["name"], a["name"]) for a in attachments) == [
        ("my-app", "DATABASE"),
        ("other-app", "REPORTS"),
    ]

    # Another user's add-on is not found by its name, nor its app's attachments.
    stranger = signup(client, "bob@example.com")
    theirs = client.post(
        "/actions/addons/resolve", json={"addon": "postgresql-steep-1"}, headers=stranger
    )
    assert theirs.status_code == 404 and theirs.json()["id"] == "not_found"
    assert client.get(f"/addons/{db.id}/addon-attachments", headers=stranger).status_code == 404
    denied = client.post(
        "/actions/addons/resolve", json={"addon": "DATABASE", "app": "my-app"}, headers=stranger
    )
    assert denied.status_code == 403
    unknown = client.post(
        "/actions/addons/resolve", json={"addon": "DATABASE", "app": "nope"}, headers=auth
    )
    assert unknown.json() == {"id": "not_found", "message": "Couldn't find that app."}
