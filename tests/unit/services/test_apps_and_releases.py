from __future__ import annotations

import pytest
from sqlalchemy import select

from kapal.domain.errors import Conflict, Forbidden, InvalidParams, NotFound
from kapal.services import apps, auth, config, formation
from kapal.services.context import Context
from kapal.services.deploy import release_slug
from kapal.services.releases import current_release, list_releases, rollback
from kapal.store.models import Formation, Release, Slug, User


def deploy(ctx: Context, user: User, app_id: str, types: dict[str, str]) -> Release:
    with ctx.store.session() as s:
        slug = Slug(
            app_id=app_id, checksum="SHA256:00", size=1, process_types=types, commit="abc1234def"
        )
        s.add(slug)
    return release_slug(ctx, app_id, user, slug.id)


def test_create_app_makes_the_first_two_releases(ctx: Context, user: User) -> None:
    app = apps.create_app(ctx, user, "my-app")
    with ctx.store.session() as s:
        assert [(r.version, r.description) for r in list_releases(s, app)] == [
            (1, "Initial release"),
            (2, "Enable Logplex"),
        ]


def test_random_name_and_errors(ctx: Context, user: User) -> None:
    named = apps.create_app(ctx, user, None)
    assert named.name.count("-") == 2
    with pytest.raises(InvalidParams):
        apps.create_app(ctx, user, "Bad_Name")
    apps.create_app(ctx, user, "taken")
    with pytest.raises(Conflict):
        apps.create_app(ctx, user, "taken")


def test_other_users_cannot_see_an_app(ctx: Context, user: User) -> None:
    apps.create_app(ctx, user, "mine")
    other, _ = auth.signup(ctx, "other@example.com", "password123")
    with pytest.raises(Forbidden):
        apps.get_app(ctx, other, "mine")
    with pytest.raises(NotFound, match=r"Couldn't find that app\."):
        apps.get_app(ctx, other, "nope")
    assert apps.list_apps(ctx, other) == []


def test_deploy_syncs_formation_and_config_makes_releases(ctx: Context, user: User) -> None:
    app = apps.create_app(ctx, user, "my-app")
    release = deploy(ctx, user, app.id, {"web": "gunicorn app:app", "worker": "python w.py"})
    assert (release.version, release.status) == (3, "succeeded")
    assert release.description == "Deploy abc1234d"
    with ctx.store.session() as s:
        rows = {f.type: f.quantity for f in s.scalars(select(Formation))}
    assert rows == {"web": 1, "worker": 0}

    values, set_release = config.update_config(ctx, user, "my-app", {"A": "1", "B": "2"})
    assert values == {"A": "1", "B": "2"}
    assert set_release is not None and set_release.description == "Set A, B config vars"
    assert set_release.slug_id == release.slug_id
    _, unchanged = config.update_config(ctx, user, "my-app", {"A": "1"})
    assert unchanged is None
    _, removed = config.update_config(ctx, user, "my-app", {"B": None})
    assert removed is not None and removed.description == "Remove B config vars"
    assert config.get_config(ctx, user, "my-app") == {"A": "1"}


def test_release_phase_keeps_a_release_pending(ctx: Context, user: User) -> None:
    app = apps.create_app(ctx, user, "my-app")
    release = deploy(ctx, user, app.id, {"web": "x", "release": "./migrate"})
    assert release.status == "pending" and release.release_command == "./migrate"
    with ctx.store.session() as s:
        current = current_release(s, app)
        assert current is not None and current.version == 2
        assert {f.type for f in s.scalars(select(Formation))} == {"web"}


def test_rollback_copies_slug_and_config(ctx: Context, user: User) -> None:
    app = apps.create_app(ctx, user, "my-app")
    deployed = deploy(ctx, user, app.id, {"web": "x"})
    config.update_config(ctx, user, "my-app", {"A": "1"})
    with ctx.store.session() as s:
        release = rollback(s, app, user, "v3")
    assert release.version == 5 and release.description == "Rollback to v3"
    assert release.config == {} and release.slug_id == deployed.slug_id
    with ctx.store.session() as s, pytest.raises(NotFound):
        rollback(s, app, user, "v99")


def test_scale_validates_types_and_quantities(ctx: Context, user: User) -> None:
    app = apps.create_app(ctx, user, "my-app")
    with pytest.raises(NotFound, match="No process types"):
        formation.scale(ctx, user, "my-app", [formation.Update("web", 1)])
    deploy(ctx, user, app.id, {"web": "x"})
    [row] = formation.scale(ctx, user, "my-app", [formation.Update("web", 3, "Standard-2X")])
    assert (row.quantity, row.size) == (3, "standard-2x")
    with pytest.raises(NotFound, match=r"Couldn't find that process type \(worker\)"):
        formation.scale(ctx, user, "my-app", [formation.Update("worker", 1)])
    with pytest.raises(InvalidParams, match="Quantity"):
        formation.scale(ctx, user, "my-app", [formation.Update("web", -1)])


def test_destroy_needs_the_right_confirmation(ctx: Context, user: User) -> None:
    apps.create_app(ctx, user, "my-app")
    with pytest.raises(InvalidParams):
        apps.destroy_app(ctx, user, "my-app", confirm="other")
    apps.destroy_app(ctx, user, "my-app", confirm="my-app")
    assert apps.list_apps(ctx, user) == []


def test_changes_during_a_release_phase_build_on_the_pending_deploy(
    ctx: Context, user: User
) -> None:
    """A config change made while v3's release command runs must not drop v3's slug."""
    app = apps.create_app(ctx, user, "my-app")
    deployed = deploy(ctx, user, app.id, {"web": "x", "release": "./migrate"})
    _, changed = config.update_config(ctx, user, "my-app", {"A": "1"})
    assert changed is not None
    assert changed.slug_id == deployed.slug_id
    assert changed.status == "pending"  # it waits for its own release phase too
    assert config.get_config(ctx, user, "my-app") == {"A": "1"}


def test_interleaved_config_changes_lose_nothing(ctx: Context, user: User) -> None:
    """Two writers at once: the second waits for the first instead of overwriting it."""
    import threading

    apps.create_app(ctx, user, "my-app")
    barrier = threading.Barrier(8)

    def set_one(n: int) -> None:
        barrier.wait()
        config.update_config(ctx, user, "my-app", {f"K{n}": str(n)})

    threads = [threading.Thread(target=set_one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert config.get_config(ctx, user, "my-app") == {f"K{n}": str(n) for n in range(8)}
    with ctx.store.session() as s:
        versions = [r.version for r in list_releases(s, apps.get_app(ctx, user, "my-app"))]
    assert versions == list(range(1, 11))
