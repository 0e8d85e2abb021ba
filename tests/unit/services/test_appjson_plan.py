"""Planning app.json for a first deploy, against a real store and real slugs (no add-on is
provisioned here: tests/integration/git/test_appjson_push.py does that)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select

from kapal.build.slugs import SlugStore
from kapal.domain.appjson import AppJsonError
from kapal.domain.errors import Conflict
from kapal.services.appjson import FirstDeploy, plan_first_deploy
from kapal.services.apps import create_app
from kapal.services.config import update_config
from kapal.services.context import Context
from kapal.services.deploy import Initial, release_slug
from kapal.services.formation import Update
from kapal.store.models import Addon, App, Attachment, Formation, Release, Slug, User

WEB = {"web": "python -m http.server $PORT"}


@pytest.fixture
def app(ctx: Context, user: User) -> App:
    return create_app(ctx, user, "plan-app")


def make_slug(
    ctx: Context, app: App, tmp_path: Path, app_json: object | None, types: dict[str, str] = WEB
) -> str:
    """A real slug (packed like a build's) with this app.json; its id."""
    build_dir = Path(tempfile.mkdtemp(dir=tmp_path, prefix="build-"))
    (build_dir / "Procfile").write_text("".join(f"{t}: {c}\n" for t, c in types.items()))
    if app_json is not None:
        text = app_json if isinstance(app_json, str) else json.dumps(app_json)
        (build_dir / "app.json").write_text(text)
    stored = SlugStore(ctx.settings.slugs_dir, 10**8).pack(build_dir)
    with ctx.store.session() as s:
        slug = Slug(app_id=app.id, checksum=stored.checksum, size=stored.size, process_types=types)
        s.add(slug)
        s.flush()
        return slug.id


def plan(ctx: Context, app: App, slug_id: str) -> FirstDeploy:
    result = plan_first_deploy(ctx, app.id, slug_id, generate=lambda: "f" * 64)
    assert result is not None
    return result


def attach_existing(ctx: Context, app: App, service: str, name: str) -> None:
    with ctx.store.session() as s:
        addon = Addon(
            name=f"postgresql-{name.lower().replace('_', '-')}-1",
            app_id=app.id,
            service=service,
            plan="essential-0",
            state="provisioned",
        )
        s.add(addon)
        s.flush()
        s.add(Attachment(addon_id=addon.id, app_id=app.id, name=name))


def test_without_app_json_there_is_nothing_to_apply(ctx: Context, app: App, tmp_path: Path) -> None:
    assert plan_first_deploy(ctx, app.id, make_slug(ctx, app, tmp_path, None)) is None
    assert plan_first_deploy(ctx, app.id, make_slug(ctx, app, tmp_path, {"name": "x"})) is None


def test_only_the_first_deploy_reads_app_json(
    ctx: Context, user: User, app: App, tmp_path: Path
) -> None:
    slug_id = make_slug(ctx, app, tmp_path, {"env": {"A": "1"}})
    release = release_slug(ctx, app.id, user, slug_id)
    assert release.status == "succeeded"
    assert plan_first_deploy(ctx, app.id, make_slug(ctx, app, tmp_path, "{ broken")) is None


def test_a_deploy_that_failed_does_not_count(
    ctx: Context, user: User, app: App, tmp_path: Path
) -> None:
    slug_id = make_slug(ctx, app, tmp_path, {"env": {"A": "1"}})
    release = release_slug(ctx, app.id, user, slug_id)
    with ctx.store.session() as s:
        row = s.get(Release, release.id)
        assert row is not None
        row.status = "failed"
    assert plan(ctx, app, make_slug(ctx, app, tmp_path, {"env": {"A": "1"}})).config == {"A": "1"}


def test_config_vars_set_generated_kept_and_summarised_without_values(
    ctx: Context, user: User, app: App, tmp_path: Path
) -> None:
    update_config(ctx, user, app.name, {"KEPT": "old"})
    manifest = {
        "env": {
            "KEPT": "new",
            "SECRET_KEY": {"generator": "secret"},
            "GIVEN": {"value": "v", "generator": "secret"},
            "OPTIONAL": {"required": False},
        },
        "formation": {"web": {"quantity": 2, "size": "2X"}},
    }
    result = plan(ctx, app, make_slug(ctx, app, tmp_path, manifest))
    assert result.config == {"SECRET_KEY": "f" * 64, "GIVEN": "v"}
    assert result.summary() == [
        "Set config vars SECRET_KEY (generated), GIVEN",
        "Kept config vars already set: KEPT",
        "Scaled to web@2:Standard-2X",
    ]
    assert "f" * 64 not in repr(result)


def test_several_required_vars_are_named_together(ctx: Context, app: App, tmp_path: Path) -> None:
    manifest = {"env": {"A": {}, "B": {"description": "b"}, "C": "c"}}
    with pytest.raises(AppJsonError) as caught:
        plan(ctx, app, make_slug(ctx, app, tmp_path, manifest))
    assert caught.value.message == (
        "app.json requires the config vars A, B, which are not set and have no value in "
        "app.json. Set them with `kapal config:set A=... B=...` and push again."
    )


def test_each_service_provides_its_own_first_config_var(
    ctx: Context, app: App, tmp_path: Path
) -> None:
    manifest = {
        "env": {"REDIS_URL": {"required": True}, "MYSQL_URL": {"required": True}},
        "addons": ["kapal-redis", "kapal-mysql:mini", "kapal-rabbitmq", "kapal-postgresql"],
    }
    result = plan(ctx, app, make_slug(ctx, app, tmp_path, manifest))
    assert result.config == {}
    assert [s.provides for s in result.addons] == [
        "REDIS_URL",
        "MYSQL_URL",
        "AMQP_URL",
        "DATABASE_URL",
    ]


def test_a_required_var_an_addon_sets_is_not_missing(
    ctx: Context, app: App, tmp_path: Path
) -> None:
    manifest = {
        "env": {"DATABASE_URL": {"required": True}, "REPORTS_URL": {}},
        "addons": ["kapal-postgresql", {"plan": "kapal-postgresql", "as": "REPORTS"}],
    }
    result = plan(ctx, app, make_slug(ctx, app, tmp_path, manifest))
    assert result.config == {}
    assert [(s.attach_as, s.provides) for s in result.addons] == [
        (None, "DATABASE_URL"),
        ("REPORTS", "REPORTS_URL"),
    ]


def test_addons_the_app_has_are_kept_once(ctx: Context, app: App, tmp_path: Path) -> None:
    attach_existing(ctx, app, "heroku-postgresql", "DATABASE")
    manifest = {"addons": ["kapal-postgresql", "kapal-postgresql:standard-0"]}
    first, second = plan(ctx, app, make_slug(ctx, app, tmp_path, manifest)).addons
    assert (first.kept_as, first.provides) == ("DATABASE", "DATABASE_URL")
    assert (second.kept_as, second.attach_as, second.choice.plan.name) == (
        None,
        None,
        "standard-0",
    )


@pytest.mark.parametrize(
    ("addons", "message"),
    [
        (
            [{"plan": "kapal-postgresql", "as": "DB"}, {"plan": "kapal-postgresql", "as": "DB"}],
            "app.json addons[1].as: the attachment name DB is taken already.",
        ),
        (
            [{"plan": "kapal-postgresql", "as": "database"}],
            "app.json addons[0]: Attachment name 'database' is invalid",
        ),
        (
            [{"plan": "kapal-postgresql", "options": {"version": "16"}}],
            "app.json addons[0].options: kapal-postgresql takes no options.",
        ),
        (["kapal-postgresql:galactic"], "app.json addons[0]: Couldn't find plan 'galactic'"),
    ],
)
def test_addon_requests_are_checked_before_anything_is_made(
    ctx: Context, app: App, tmp_path: Path, addons: list[object], message: str
) -> None:
    with pytest.raises(AppJsonError) as caught:
        plan(ctx, app, make_slug(ctx, app, tmp_path, {"addons": addons}))
    assert caught.value.message.startswith(message)


def test_an_app_json_that_is_a_link_is_refused(ctx: Context, app: App, tmp_path: Path) -> None:
    build_dir = tmp_path / "linked"
    build_dir.mkdir()
    (build_dir / "Procfile").write_text("web: x\n")
    (build_dir / "app.json").symlink_to("/etc/passwd")
    stored = SlugStore(ctx.settings.slugs_dir, 10**8).pack(build_dir)
    with ctx.store.session() as s:
        slug = Slug(app_id=app.id, checksum=stored.checksum, size=stored.size, process_types=WEB)
        s.add(slug)
        s.flush()
        slug_id = slug.id
    with pytest.raises(AppJsonError, match=r"app\.json is not a regular file"):
        plan_first_deploy(ctx, app.id, slug_id)


def test_the_first_release_carries_config_and_formation(
    ctx: Context, user: User, app: App, tmp_path: Path
) -> None:
    slug_id = make_slug(ctx, app, tmp_path, None, {"web": "w", "worker": "k"})
    update_config(ctx, user, app.name, {"SET_MEANWHILE": "user's"})
    initial = Initial(
        {"NEW": "1", "SET_MEANWHILE": "app.json's"},
        (Update("worker", 2, "performance-m"),),
    )
    release = release_slug(ctx, app.id, user, slug_id, initial=initial)
    assert release.config == {"NEW": "1", "SET_MEANWHILE": "user's"}
    with ctx.store.session() as s:
        query = select(Formation).where(Formation.app_id == app.id)
        rows = {f.type: (f.quantity, f.size) for f in s.scalars(query)}
    assert rows == {"web": (1, "eco"), "worker": (2, "performance-m")}
    with pytest.raises(Conflict, match=r"app\.json applies to the first deploy only"):
        release_slug(ctx, app.id, user, slug_id, initial=initial)
