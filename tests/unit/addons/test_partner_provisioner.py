"""PartnerProvisioner against answers made up on httpx.MockTransport: what it sends, and how
it reads (or refuses) what a provider answers."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kapal.addons.errors import ProvisionError
from kapal.addons.partner import AddonRef, Endpoint, PartnerProvisioner

PASSWORD = "provider-password-1"
BASE = "https://acme.example.com/heroku/resources"
ENDPOINT = Endpoint("acme-search", BASE, PASSWORD, "ACME", ("ACME_URL", "ACME_TOKEN"))
ADDON = AddonRef("uuid-1", "http://localhost:5000/addons/uuid-1", {"size": "s"})

Answer = Callable[[httpx.Request], httpx.Response]


class Recorder:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def provisioner(
    answer: Answer, endpoint: Endpoint = ENDPOINT, addon: AddonRef = ADDON
) -> tuple[PartnerProvisioner, Recorder]:
    recorder = Recorder(answer)
    made = PartnerProvisioner(endpoint, addon, transport=httpx.MockTransport(recorder))
    return made, recorder


def answering(status: int, body: Any = None, content: bytes | None = None) -> Answer:
    def answer(_: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content)
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status)

    return answer


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(ProvisionError) as err:
        call()
    assert PASSWORD not in err.value.message
    return err.value.message


def test_provision_posts_herokus_body_with_basic_auth() -> None:
    answer = {"id": 7, "config": {"ACME_URL": "https://x", "ACME_TOKEN": "t"}, "message": "ok"}
    made, sent = provisioner(answering(200, answer))
    assert made.provision("acme-search-silent-1", "test") == {"URL": "https://x", "TOKEN": "t"}
    assert (made.provider_id, made.message) == ("7", "ok")
    (request,) = sent.requests
    assert (request.method, str(request.url)) == ("POST", BASE)
    token = base64.b64encode(f"acme-search:{PASSWORD}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {token}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/vnd.heroku-addons+json; version=3"
    assert json.loads(request.content) == {
        "uuid": "uuid-1",
        "name": "acme-search-silent-1",
        "plan": "test",
        "region": "local",
        "callback_url": "http://localhost:5000/addons/uuid-1",
        "options": {"size": "s"},
        "log_drain_token": "d.uuid-1",
    }


def test_no_config_is_an_add_on_without_vars() -> None:
    made, _ = provisioner(answering(201, {"id": "a-1"}))
    assert made.provision("n", "test") == {}


@pytest.mark.parametrize(
    ("config", "says"),
    [
        (["ACME_URL"], "not an object of config var names to strings"),
        ({"ACME_URL": 1}, "not an object of config var names to strings"),
        ({"OTHER_URL": "x"}, "must be ACME_<NAME>"),
        ({"ACME_": "x"}, "must be ACME_<NAME>"),
        ({"acme_url": "x"}, "must be ACME_<NAME>"),
        ({"ACME_PASSWORD": "x"}, "not one of those registered for it (ACME_URL, ACME_TOKEN)"),
    ],
)
def test_a_bad_config_is_refused_and_the_id_kept_for_clean_up(config: object, says: str) -> None:
    made, _ = provisioner(answering(200, {"id": "a-1", "config": config}))
    assert says in refused(lambda: made.provision("n", "test"))
    assert made.provider_id == "a-1"


def test_undeclared_vars_need_only_the_prefix() -> None:
    endpoint = Endpoint("acme-search", BASE, PASSWORD, "ACME_SEARCH")
    made, _ = provisioner(answering(200, {"id": "a", "config": {"ACME_SEARCH_KEY": "k"}}), endpoint)
    assert made.provision("n", "test") == {"KEY": "k"}


@pytest.mark.parametrize(
    ("status", "body", "content", "says"),
    [
        (
            422,
            {"message": "No capacity\n in eu"},
            None,
            "refused to provision (HTTP 422): No capacity in eu",
        ),
        (500, None, b"oops", "refused to provision (HTTP 500)."),
        (302, {"message": "elsewhere"}, None, "(HTTP 302)"),
        (200, None, b"not json", "answered HTTP 200 with something that is not a JSON object"),
        (200, ["a"], None, "not a JSON object"),
        (200, {"id": True}, None, "answered without an id"),
        (200, {"id": "x" * 129}, None, "answered without an id"),
        (202, {"id": "a-1"}, None, "202 Accepted"),
    ],
)
def test_failed_provisioning_says_why(
    status: int, body: object, content: bytes | None, says: str
) -> None:
    made, _ = provisioner(answering(status, body, content))
    assert says in refused(lambda: made.provision("n", "test"))


def test_timeouts_and_unreachable_providers_say_so() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    made, _ = provisioner(slow)
    assert "did not answer within 25 s when asked to provision" in refused(
        lambda: made.provision("n", "test")
    )
    made, _ = provisioner(down)
    assert "could not be reached ([Errno 111] Connection refused)" in refused(
        lambda: made.provision("n", "test")
    )


@pytest.mark.parametrize("status", [200, 204, 404, 410])
def test_deprovision_deletes_and_gone_is_fine(status: int) -> None:
    made, sent = provisioner(answering(status), addon=AddonRef("u", "cb", provider_id="a/1"))
    made.deprovision("n")
    (request,) = sent.requests
    assert (request.method, str(request.url)) == ("DELETE", f"{BASE}/a%2F1")


def test_deprovision_failures_and_nothing_to_remove() -> None:
    made, _ = provisioner(answering(503), addon=AddonRef("u", "cb", provider_id="a-1"))
    assert "refused to deprovision (HTTP 503)" in refused(lambda: made.deprovision("n"))
    made, sent = provisioner(answering(500))
    made.deprovision("n")  # the provider never named it: nothing Kapal can remove
    assert sent.requests == []


def test_change_plan_puts_the_plan_and_reads_new_config() -> None:
    addon = AddonRef("u", "cb", provider_id="a-1")
    made, sent = provisioner(
        answering(200, {"config": {"ACME_URL": "y"}, "message": "m"}), addon=addon
    )
    assert made.change_plan("pro") == {"URL": "y"}
    assert made.message == "m"
    (request,) = sent.requests
    assert (request.method, str(request.url)) == ("PUT", f"{BASE}/a-1")
    assert json.loads(request.content) == {"plan": "pro"}
    made, _ = provisioner(answering(204), addon=addon)
    assert made.change_plan("pro") is None
    made, _ = provisioner(answering(422, {"message": "no downgrades"}), addon=addon)
    assert "refused to change the plan (HTTP 422): no downgrades" in refused(
        lambda: made.change_plan("test")
    )


def test_the_password_is_not_in_the_endpoints_repr() -> None:
    assert PASSWORD not in repr(ENDPOINT)
