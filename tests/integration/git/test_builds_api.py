"""The builds API without git: upload a source, build it, follow the output stream."""

from __future__ import annotations

import dataclasses
import io
import tarfile
from collections.abc import Callable

import httpx
from sqlalchemy import update
from tests.integration.git.pushkit import Api, Pusher

from kapal.store.models import Build


def tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def client(pusher: Pusher) -> httpx.Client:
    return httpx.Client(
        base_url=pusher.api.url, headers={"Authorization": f"Bearer {pusher.token}"}, timeout=60
    )


def upload(http: httpx.Client, body: bytes) -> dict[str, str]:
    created = http.post("/sources")
    assert created.status_code == 201, created.text
    blob: dict[str, str] = created.json()["source_blob"]
    put = httpx.put(blob["put_url"].replace("localhost", "127.0.0.1"), content=body)
    assert put.status_code == 200, put.text
    return blob


def test_a_build_from_an_uploaded_source(pusher: Pusher) -> None:
    body = tarball({"requirements.txt": "", "Procfile": "web: python -m http.server $PORT\n"})
    with client(pusher) as http:
        blob = upload(http, body)
        assert blob["get_url"].startswith(f"http://localhost:{pusher.api.port}/sources/")
        assert httpx.get(blob["get_url"].replace("localhost", "127.0.0.1")).content == body

        started = http.post(
            "/apps/alice-app/builds",
            json={"source_blob": {"url": blob["get_url"], "version": "v1.0"}},
        )
        assert started.status_code == 201, started.text
        build = started.json()
        assert build["status"] == "pending"
        assert build["app"]["id"] == pusher.app.id
        assert build["user"] == {"id": build["user"]["id"], "email": "alice@example.com"}
        assert build["source_blob"] == {
            "checksum": None,
            "url": blob["get_url"],
            "version": "v1.0",
            "version_description": None,
        }
        assert (build["release"], build["slug"]) == (None, None)

        # The stream ends by itself once the build is over.
        stream_url = build["output_stream_url"].replace("localhost", "127.0.0.1")
        output = httpx.get(stream_url, timeout=httpx.Timeout(30, read=None)).text
        assert "-----> Python app detected" in output
        assert "       Released v3" in output

        done = http.get(f"/apps/alice-app/builds/{build['id']}").json()
        assert done["status"] == "succeeded"
        assert done["slug"] is not None
        assert done["release"]["version"] == 3
        assert done["source_blob"]["url"] is None  # not kept once the source has expired


def test_builds_accept_only_this_kapals_sources(pusher: Pusher) -> None:
    with client(pusher) as http:
        for url in (
            "https://example.com/source.tgz",
            f"http://localhost:{pusher.api.port}/sources/nope",
            f"http://localhost:{pusher.api.port}/sources/{'0' * 36}/not-the-secret",
        ):
            answer = http.post("/apps/alice-app/builds", json={"source_blob": {"url": url}})
            assert answer.status_code == 422, (url, answer.text)
            assert answer.json()["id"] == "invalid_params"

        never_uploaded = http.post("/sources").json()["source_blob"]["get_url"]
        answer = http.post("/apps/alice-app/builds", json={"source_blob": {"url": never_uploaded}})
        assert answer.status_code == 422
        assert "Nothing has been uploaded" in answer.json()["message"]
        assert http.get("/apps/alice-app/builds").json() == []


def test_secrets_guard_sources_and_output(pusher: Pusher, api: Api) -> None:
    with client(pusher) as http:
        blob = upload(http, tarball({"README": "x"}))
        source_id = blob["put_url"].split("/")[-2]
        wrong = f"{api.url}/sources/{source_id}/wrong-secret"
        assert httpx.put(wrong, content=b"x").status_code == 404
        assert httpx.get(wrong).status_code == 404

        build = http.post("/apps/alice-app/builds", json={"source_blob": {"url": blob["get_url"]}})
        build_id = build.json()["id"]
        assert httpx.get(f"{api.url}/build-output/{build_id}/{'0' * 64}").status_code == 404
        output = httpx.get(
            build.json()["output_stream_url"].replace("localhost", "127.0.0.1"),
            timeout=httpx.Timeout(30, read=None),
        ).text
        assert "No default language could be detected" in output
        assert http.get(f"/apps/alice-app/builds/{build_id}").json()["status"] == "failed"

    assert httpx.post(f"{api.url}/sources").status_code == 401


def test_another_users_app_cannot_be_built(make_pusher: Callable[[str], Pusher]) -> None:
    alice, bob = make_pusher("alice"), make_pusher("bob")
    with client(bob) as http:
        blob = upload(http, tarball({"README": "x"}))
        answer = http.post(
            f"/apps/{alice.app.name}/builds", json={"source_blob": {"url": blob["get_url"]}}
        )
        assert answer.status_code == 403
        assert http.get(f"/apps/{alice.app.name}/builds").status_code == 403


def test_uploads_are_size_capped(pusher: Pusher, api: Api) -> None:
    api.ctx.settings = dataclasses.replace(api.ctx.settings, slug_max_bytes=1000)
    with client(pusher) as http:
        put_url = http.post("/sources").json()["source_blob"]["put_url"]
    too_big = httpx.put(put_url.replace("localhost", "127.0.0.1"), content=b"x" * 2000)
    assert too_big.status_code == 413
    assert "larger than the limit" in too_big.json()["message"]
    assert list(api.ctx.settings.sources_dir.iterdir()) == []


def build_and_wait(http: httpx.Client, body: bytes, **extra: object) -> dict[str, object]:
    blob = upload(http, body)
    started = http.post(
        "/apps/alice-app/builds", json={"source_blob": {"url": blob["get_url"]}, **extra}
    )
    assert started.status_code == 201, started.text
    stream_url = started.json()["output_stream_url"].replace("localhost", "127.0.0.1")
    httpx.get(stream_url, timeout=httpx.Timeout(30, read=None)).raise_for_status()
    done: dict[str, object] = http.get(f"/apps/alice-app/builds/{started.json()['id']}").json()
    return done


def test_the_build_cache_can_be_purged_when_no_build_runs(
    make_pusher: Callable[[str], Pusher],
) -> None:
    alice, bob = make_pusher("alice"), make_pusher("bob")
    cache = alice.api.ctx.settings.build_cache(alice.app.id)
    body = tarball({"requirements.txt": "", "Procfile": "web: python -m http.server $PORT\n"})
    with client(alice) as http:
        assert build_and_wait(http, body)["status"] == "succeeded"
        assert (cache / "uv").is_dir()

        with client(bob) as other:
            assert other.delete("/apps/alice-app/build-cache").status_code == 403
        assert cache.is_dir()

        # While a build runs (here: one made pending by hand), the cache stays.
        with alice.api.ctx.store.session() as s:
            s.add(Build(app_id=alice.app.id, user_id=alice.app.owner_id, status="pending"))
        busy = http.delete("/apps/alice-app/build-cache")
        assert busy.status_code == 409 and busy.json()["id"] == "conflict"
        assert cache.is_dir()
        with alice.api.ctx.store.session() as s:
            s.execute(update(Build).where(Build.status == "pending").values(status="failed"))

        purged = http.delete("/apps/alice-app/build-cache")
        assert purged.status_code == 200, purged.text
        assert not cache.exists()
        assert [p.name for p in alice.api.ctx.settings.cache_dir.iterdir()] == []
        assert http.delete("/apps/alice-app/build-cache").status_code == 200  # nothing to purge

        # The next build starts from an empty cache and succeeds.
        assert build_and_wait(http, body)["status"] == "succeeded"
        assert (cache / "uv").is_dir()


def test_a_build_can_name_its_own_buildpacks(pusher: Pusher) -> None:
    body = tarball({"requirements.txt": "", "Procfile": "web: python -m http.server $PORT\n"})
    with client(pusher) as http:
        done = build_and_wait(http, body, buildpacks=[{"url": "heroku/python"}])
        assert done["status"] == "succeeded"
        assert done["buildpacks"] == [{"url": "heroku/python", "name": "heroku/python"}]
        refused = http.post(
            "/apps/alice-app/builds",
            json={"source_blob": {"url": "x"}, "buildpacks": [{"url": "ftp://nope"}]},
        )
        assert refused.status_code == 422 and "ftp://nope" in refused.json()["message"]
