"""Request-Id and RateLimit-Remaining on every response; 429 rate_limit past the limit."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from tests.unit.api.test_api import signup

from kapal.api.app import create_api
from kapal.api.ratelimit import Buckets
from kapal.services.context import Context


def test_the_request_id_is_the_first_of_the_clients_list_or_a_new_one(
    client: TestClient,
) -> None:
    mine = str(uuid.uuid4())
    sent = client.get("/account", headers={"Request-Id": f"{mine},{uuid.uuid4()},x"})
    assert sent.headers["Request-Id"] == mine
    made = client.get("/account")
    assert made.status_code == 401  # errors carry it too
    assert uuid.UUID(made.headers["Request-Id"])
    bogus = client.get("/account", headers={"Request-Id": "a b\tc"})
    assert uuid.UUID(bogus.headers["Request-Id"])  # replaced, never echoed raw
    assert "RateLimit-Remaining" not in made.headers  # no token, no bucket


def test_each_token_has_its_own_bucket_and_an_empty_one_gets_429(ctx: Context) -> None:
    with TestClient(create_api(ctx, rate_limit=3)) as client:
        auth = signup(client)
        left = [client.get("/account", headers=auth).headers["RateLimit-Remaining"] for _ in "abc"]
        assert left == ["2", "1", "0"]
        refused = client.get("/account", headers=auth)
        assert refused.status_code == 429
        assert refused.json()["id"] == "rate_limit"
        assert refused.headers["RateLimit-Remaining"] == "0"
        assert uuid.UUID(refused.headers["Request-Id"])
        other = signup(client, "bo@example.com")
        assert client.get("/account", headers=other).status_code == 200


def test_buckets_refill_over_the_hour() -> None:
    now = [0.0]
    buckets = Buckets(3600, clock=lambda: now[0])  # one a second
    assert [buckets.take(b"k") for _ in range(3)] == [3599, 3598, 3597]
    now[0] += 2.0
    assert buckets.take(b"k") == 3598
    empty = Buckets(1, clock=lambda: now[0])
    assert empty.take(b"k") == 0
    assert empty.take(b"k") == -1
    now[0] += 3600.0
    assert empty.take(b"k") == 0
