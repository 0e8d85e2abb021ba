from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from tests.conftest import free_port

from kapal.client import KapalApiError, KapalClient, KapalConnectionError
from kapal.client.responses import sse_data

BASE = "http://localhost:5000"


class Recorder:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder(httpx.Response(200, json={}))


@pytest.fixture
def client(recorder: Recorder) -> Iterator[KapalClient]:
    with KapalClient(BASE + "/", "tok", transport=httpx.MockTransport(recorder)) as c:
        yield c


def test_every_api_request_has_heroku_headers(client: KapalClient, recorder: Recorder) -> None:
    client.get_app("demo")
    request = recorder.last
    assert str(request.url) == "http://localhost:5000/apps/demo"
    assert request.headers["accept"] == "application/vnd.heroku+json; version=3"
    assert request.headers["authorization"] == "Bearer tok"
    assert request.headers["user-agent"].startswith("kapal-cli/")


def test_path_segments_are_quoted(client: KapalClient, recorder: Recorder) -> None:
    client.addon("demo", "../../account")
    assert recorder.last.url.raw_path == b"/apps/demo/addons/..%2F..%2Faccount"


@pytest.mark.parametrize(
    ("call", "method", "path", "payload"),
    [
        (lambda c: c.create_app(None), "POST", "/apps", {}),
        (lambda c: c.create_app("demo"), "POST", "/apps", {"name": "demo"}),
        (
            lambda c: c.update_app("demo", maintenance=True),
            "PATCH",
            "/apps/demo",
            {"maintenance": True},
        ),
        (
            lambda c: c.scale("demo", [{"type": "web", "quantity": 2}]),
            "PATCH",
            "/apps/demo/formation",
            {"updates": [{"type": "web", "quantity": 2}]},
        ),
        (
            lambda c: c.create_dyno("demo", "bash", attach=True, size="basic", env={"A": "1"}),
            "POST",
            "/apps/demo/dynos",
            {"command": "bash", "attach": True, "size": "basic", "env": {"A": "1"}},
        ),
        (
            lambda c: c.update_config_vars("demo", {"A": "1", "B": None}),
            "PATCH",
            "/apps/demo/config-vars",
            {"A": "1", "B": None},
        ),
        (
            lambda c: c.rollback("demo", "rel-7"),
            "POST",
            "/apps/demo/releases",
            {"release": "rel-7"},
        ),
        (
            lambda c: c.create_log_session("demo", lines=5, tail=True, dyno="web.1", source="app"),
            "POST",
            "/apps/demo/log-sessions",
            {"lines": 5, "tail": True, "dyno": "web.1", "source": "app"},
        ),
        (
            lambda c: c.create_addon(
                "demo", "kapal-postgresql:dev", attachment_name="DB", name="pg-1"
            ),
            "POST",
            "/apps/demo/addons",
            {"plan": "kapal-postgresql:dev", "attachment": {"name": "DB"}, "name": "pg-1"},
        ),
    ],
)
def test_bodies(
    client: KapalClient,
    recorder: Recorder,
    call: Callable[[KapalClient], object],
    method: str,
    path: str,
    payload: object,
) -> None:
    call(client)
    assert (recorder.last.method, recorder.last.url.path) == (method, path)
    assert json.loads(recorder.last.content) == payload


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({}, "/apps/demo/dynos"),
        ({"process_type": "web"}, "/apps/demo/formations/web"),
        ({"dyno": "web.1"}, "/apps/demo/dynos/web.1"),
    ],
)
def test_restart_paths(client: KapalClient, recorder: Recorder, kwargs: dict, path: str) -> None:
    client.restart("demo", **kwargs)
    assert (recorder.last.method, recorder.last.url.path) == ("DELETE", path)


def test_releases_range(client: KapalClient, recorder: Recorder) -> None:
    recorder.response = httpx.Response(206, json=[{"version": 3}])
    assert client.releases("demo", max=1) == [{"version": 3}]
    assert recorder.last.headers["range"] == "version ..; order=desc,max=1"


def test_login_uses_basic_auth_not_a_token(recorder: Recorder) -> None:
    with KapalClient(BASE, None, transport=httpx.MockTransport(recorder)) as anonymous:
        anonymous.login("me@example.com", "pw")
    assert recorder.last.headers["authorization"] == "Basic bWVAZXhhbXBsZS5jb206cHc="


def test_no_token_no_authorization(recorder: Recorder) -> None:
    with KapalClient(BASE, None, transport=httpx.MockTransport(recorder)) as anonymous:
        anonymous.signup("me@example.com", "pw")
    assert "authorization" not in recorder.last.headers


def test_api_error_carries_id_message_status(client: KapalClient, recorder: Recorder) -> None:
    recorder.response = httpx.Response(
        404, json={"id": "not_found", "message": "Couldn't find that app."}
    )
    with pytest.raises(KapalApiError) as info:
        client.get_app("nope")
    assert (info.value.status, info.value.id, info.value.message) == (
        404,
        "not_found",
        "Couldn't find that app.",
    )


def test_non_json_error_keeps_status_and_text(client: KapalClient, recorder: Recorder) -> None:
    recorder.response = httpx.Response(502, text="<html>Bad gateway</html>")
    with pytest.raises(KapalApiError) as info:
        client.list_apps()
    assert info.value.status == 502
    assert info.value.message == (
        "HTTP 502 for GET http://localhost:5000/apps: <html>Bad gateway</html>"
    )


def test_empty_success_body(client: KapalClient, recorder: Recorder) -> None:
    recorder.response = httpx.Response(204)
    assert client.destroy_app("demo") is None


def test_connection_refused_on_a_real_socket() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    with KapalClient(base, "tok") as unreachable, pytest.raises(KapalConnectionError) as info:
        unreachable.list_apps()
    assert info.value.url == base


def test_stream_log_plain_and_no_token(client: KapalClient, recorder: Recorder) -> None:
    recorder.response = httpx.Response(
        200, text="one\ntwo\n", headers={"content-type": "text/plain"}
    )
    assert list(client.stream_log("http://localhost:5001/sessions/x")) == ["one", "two"]
    assert "authorization" not in recorder.last.headers
    assert recorder.last.url.host == "localhost" and recorder.last.url.port == 5001


def test_stream_log_asks_for_plain_text(client: KapalClient, recorder: Recorder) -> None:
    recorder.response = httpx.Response(200, text="")
    assert list(client.stream_log("http://localhost:5001/sessions/x")) == []
    assert recorder.last.headers["accept"] == "text/plain"


def test_stream_log_error(client: KapalClient, recorder: Recorder) -> None:
    recorder.response = httpx.Response(404, json={"id": "not_found", "message": "Expired."})
    with pytest.raises(KapalApiError, match="Expired"):
        list(client.stream_log("http://localhost:5001/sessions/x"))


def test_stream_log_errors_never_show_the_secret_url(
    client: KapalClient, recorder: Recorder
) -> None:
    recorder.response = httpx.Response(404, text="Log session not found or expired.\n")
    with pytest.raises(KapalApiError) as info:
        list(client.stream_log("http://localhost:5001/sessions/s3cr3t"))
    assert info.value.message == "Log session not found or expired."
    port = free_port()
    with KapalClient(BASE, "tok") as real, pytest.raises(KapalConnectionError) as refused:
        list(real.stream_log(f"http://127.0.0.1:{port}/sessions/s3cr3t"))
    assert "s3cr3t" not in str(refused.value)
    assert refused.value.url == f"http://127.0.0.1:{port}"


def test_sse_data() -> None:
    lines = iter(["id: 1", "data: hello", "", ": keep-alive", "data:x", "retry: 3000", ""])
    assert list(sse_data(lines)) == ["hello", "x"]


def test_each_warning_message_is_passed_on_once_errors_included() -> None:
    seen: list[str] = []
    answers = iter(
        [
            httpx.Response(
                200, json={}, headers=[("Warning-Message", "a"), ("Warning-Message", "b")]
            ),
            httpx.Response(200, json={}, headers={"Warning-Message": "a"}),
            httpx.Response(
                403, json={"id": "forbidden", "message": "no"}, headers={"Warning-Message": "c"}
            ),
        ]
    )
    transport = httpx.MockTransport(lambda _: next(answers))
    with KapalClient(BASE, "t", transport=transport, on_warning=seen.append) as client:
        client.request("GET", "/account")
        client.request("GET", "/account")
        with pytest.raises(KapalApiError):
            client.request("GET", "/account")
    assert seen == ["a", "b", "c"]
