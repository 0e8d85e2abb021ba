from __future__ import annotations

import httpx
import pytest
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body

from kapal.cli.ps import scale_updates
from kapal.domain.formation import parse_scale_arg


def formation(type_: str, quantity: int, size: str = "Eco") -> dict:
    return {"id": type_, "type": type_, "quantity": quantity, "size": size, "command": "x"}


def echo_formation(request: httpx.Request) -> httpx.Response:
    """PATCH answer: the updated rows, with the display size the API would show."""
    sizes = {"basic": "Basic", "eco": "Eco"}
    rows = [
        formation(u["type"], u["quantity"], sizes.get(u.get("size", "eco"), "?"))
        for u in body(request)["updates"]
    ]
    return httpx.Response(200, json=rows)


@pytest.mark.parametrize(
    ("args", "updates"),
    [
        (["web=2"], [{"type": "web", "quantity": 2}]),
        (["worker+1"], [{"type": "worker", "quantity": 1}]),
        (["web-3"], [{"type": "web", "quantity": 0}]),
        (["web+2", "web-1"], [{"type": "web", "quantity": 2}]),
        (["web=1:Basic"], [{"type": "web", "quantity": 1, "size": "basic"}]),
        (["clock+1"], [{"type": "clock", "quantity": 1}]),
    ],
)
def test_scale_updates_are_absolute(args: list[str], updates: list[dict]) -> None:
    current = [formation("web", 1), formation("worker", 0)]
    assert scale_updates([parse_scale_arg(a) for a in args], current) == updates


def dyno(name: str, state: str = "up") -> dict:
    return {
        "id": name,
        "name": name,
        "type": name.split(".")[0],
        "state": state,
        "command": "gunicorn app:app",
        "size": "Eco",
        "created_at": "2026-11-26T13:39:00Z",
        "updated_at": "2026-11-26T13:39:22Z",
    }


def test_ps(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/dynos", [dyno("web.1")])
    result = kapal("ps", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "=== web (Eco): gunicorn app:app (1)\n\nweb.1: up 2026/11/26 13:39:22 +0000 (~ 6s ago)\n"
    )
    assert_token(fake.one("GET", "/apps/demo/dynos"))


def test_ps_none(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/dynos", [])
    assert kapal("ps", "-a", "demo").stdout == "No dynos on ⬢ demo\n"


def test_ps_of_one_type(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/dynos", [dyno("web.1"), dyno("worker.1")])
    assert "worker.1" not in kapal("ps", "web", "-a", "demo").stdout
    result = kapal("ps", "clock", "-a", "demo")
    assert (result.exit_code, result.stderr) == (1, " ▸    No clock dynos on ⬢ demo\n")


def test_scale(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/formation", [formation("web", 1), formation("worker", 0)])
    fake.on("PATCH", "/apps/demo/formation", handler=echo_formation)
    result = kapal("ps:scale", "-a", "demo", "web=2", "worker+1")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Scaling dynos... done, now running web at 2:Eco, worker at 1:Eco\n"
    request = fake.one("PATCH", "/apps/demo/formation")
    assert_token(request)
    assert body(request) == {
        "updates": [{"type": "web", "quantity": 2}, {"type": "worker", "quantity": 1}]
    }


def test_scale_size(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/formation", [formation("web", 1)])
    fake.on("PATCH", "/apps/demo/formation", handler=echo_formation)
    result = kapal("scale", "-a", "demo", "web=1:basic")
    assert result.stderr == "Scaling dynos... done, now running web at 1:Basic\n"


def test_scale_without_changes_shows_the_formation(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/formation", [formation("worker", 0), formation("web", 1)])
    result = kapal("ps:scale", "-a", "demo")
    assert result.stdout == "web=1:Eco worker=0:Eco\n"
    assert fake.sent("PATCH", "/apps/demo/formation") == []


def test_scale_without_process_types(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/formation", [])
    assert kapal("ps:scale", "-a", "demo").stdout.startswith("No process types on ⬢ demo.\n")


def test_scale_rejects_bad_arguments_before_any_request(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal("ps:scale", "-a", "demo", "web")
    assert result.exit_code == 1
    assert result.stderr.startswith(" ▸    Invalid scale argument 'web'")
    result = kapal("ps:scale", "-a", "demo", "web=1:huge")
    assert "Unknown dyno size" in result.stderr
    assert fake.requests == []


def test_scale_unknown_type_error_from_api(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/formation", [formation("web", 1)])
    message = "Couldn't find that process type (worker)."
    fake.error("PATCH", "/apps/demo/formation", 422, "invalid_params", message)
    result = kapal("ps:scale", "-a", "demo", "worker=1")
    assert result.exit_code == 1
    assert result.stderr == f"Scaling dynos... !\n ▸    {message}\n"


@pytest.mark.parametrize(
    ("args", "path", "said"),
    [
        ([], "/apps/demo/dynos", "Restarting dynos on ⬢ demo... done\n"),
        (["web"], "/apps/demo/formations/web", "Restarting web dynos on ⬢ demo... done\n"),
        (["web.1"], "/apps/demo/dynos/web.1", "Restarting dyno web.1 on ⬢ demo... done\n"),
        (["-p", "worker"], "/apps/demo/formations/worker", "Restarting worker dynos on ⬢ demo"),
        (["-d", "web.2"], "/apps/demo/dynos/web.2", "Restarting dyno web.2 on ⬢ demo... done\n"),
    ],
)
def test_restart(kapal: Kapal, fake: FakeApi, args: list[str], path: str, said: str) -> None:
    fake.on("DELETE", path, {}, status=202)
    result = kapal("ps:restart", "-a", "demo", *args)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(said)
    assert_token(fake.one("DELETE", path))
