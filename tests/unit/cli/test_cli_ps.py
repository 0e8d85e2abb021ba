from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner
from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, assert_token, body

from kapal.cli.main import build_cli
from kapal.cli.ps import scale_updates
from kapal.domain.formation import DYNO_SIZES, parse_scale_arg


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


def test_ps_says_when_a_crashed_dyno_restarts(kapal: Kapal, fake: FakeApi) -> None:
    crashed = {**dyno("web.1", "crashed"), "restart_at": "2026-11-26T13:39:37Z"}
    due = {**dyno("web.2", "crashed"), "restart_at": "2026-11-26T13:39:20Z"}
    fake.on("GET", "/apps/demo/dynos", [crashed, due, dyno("web.3")])
    assert kapal("ps", "-a", "demo").stdout.splitlines()[2:] == [
        "web.1: crashed 2026/11/26 13:39:22 +0000 (~ 6s ago), restarting in 9s",
        "web.2: crashed 2026/11/26 13:39:22 +0000 (~ 6s ago), restarting now",
        "web.3: up 2026/11/26 13:39:22 +0000 (~ 6s ago)",
    ]


def test_ps_shows_each_size_of_a_type_being_resized(kapal: Kapal, fake: FakeApi) -> None:
    resized = [
        {**dyno("web.1"), "size": "Standard-2X"},
        dyno("web.2"),
        {**dyno("web.3"), "size": "Standard-2X"},
    ]
    fake.on("GET", "/apps/demo/dynos", resized)
    lines = kapal("ps", "-a", "demo").stdout.splitlines()
    assert [line for line in lines if line.startswith("===")] == [
        "=== web (Eco): gunicorn app:app (1)",
        "=== web (Standard-2X): gunicorn app:app (2)",
    ]


def test_scale_with_a_size(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/formation", [formation("web", 1)])
    fake.on("PATCH", "/apps/demo/formation", [formation("web", 2, "Standard-1X")])
    result = kapal("ps:scale", "-a", "demo", "web=2:Standard-1X")
    assert result.stderr == "Scaling dynos... done, now running web at 2:Standard-1X\n"
    assert body(fake.one("PATCH", "/apps/demo/formation")) == {
        "updates": [{"type": "web", "quantity": 2, "size": "standard-1x"}]
    }


TYPES_TABLE = """\
=== Process Types

 Type    Size         Qty
 ────────────────────────
 web     Standard-2X  2
 worker  Eco          1

=== Dyno Totals

 Type         Total
 ──────────────────
 Standard-2X  2
 Eco          1
"""


def test_type_shows_sizes(kapal: Kapal, fake: FakeApi) -> None:
    rows = [formation("worker", 1), formation("web", 2, "Standard-2X")]
    fake.on("GET", "/apps/demo/formation", rows)
    result = kapal("ps:type", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout == TYPES_TABLE
    assert fake.sent("PATCH", "/apps/demo/formation") == []


def test_type_changes_one_process_type(kapal: Kapal, fake: FakeApi) -> None:
    before = [formation("worker", 1), formation("web", 2)]
    after = [formation("worker", 1), formation("web", 2, "Standard-2X")]
    answers = iter([before, after])
    fake.on(
        "GET", "/apps/demo/formation", handler=lambda _: httpx.Response(200, json=next(answers))
    )
    fake.on("PATCH", "/apps/demo/formation", after[1:])
    result = kapal("ps:type", "web=Standard-2X", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Scaling dynos on ⬢ demo... done\n"
    assert result.stdout == TYPES_TABLE
    request = fake.one("PATCH", "/apps/demo/formation")
    assert_token(request)
    assert body(request) == {"updates": [{"type": "web", "size": "standard-2x"}]}


def test_type_with_one_size_changes_every_type(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/formation", [formation("worker", 1), formation("web", 2)])
    fake.on("PATCH", "/apps/demo/formation", [])
    result = kapal("ps:resize", "basic", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert body(fake.one("PATCH", "/apps/demo/formation")) == {
        "updates": [{"type": "web", "size": "basic"}, {"type": "worker", "size": "basic"}]
    }


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["clock=basic"], " ▸    Type clock not found in process formation.\n ▸    Types: web\n"),
        (["web=huge"], " ▸    Unknown dyno size 'huge'. Known sizes: Eco, Basic,"),
        (["basic", "eco"], " ▸    Give one SIZE for every process type, or TYPE=SIZE arguments."),
        (["web="], " ▸    Invalid argument 'web=': expected TYPE=SIZE, e.g. web=standard-2x."),
    ],
)
def test_type_refuses_bad_arguments(
    kapal: Kapal, fake: FakeApi, args: list[str], error: str
) -> None:
    fake.on("GET", "/apps/demo/formation", [formation("web", 1)])
    result = kapal("ps:type", "-a", "demo", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(error)
    assert fake.sent("PATCH", "/apps/demo/formation") == []


def test_type_without_process_types(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/formation", [])
    assert kapal("ps:type", "-a", "demo").stdout.startswith("No process types on ⬢ demo.\n")
    result = kapal("ps:type", "basic", "-a", "demo")
    assert (result.exit_code, result.stderr) == (
        1,
        " ▸    No process types on ⬢ demo: git push a Procfile first.\n",
    )


def test_type_help_names_every_size() -> None:
    result = CliRunner().invoke(build_cli(), ["ps:type", "--help"])
    assert all(size in result.output for size in DYNO_SIZES), result.output


@pytest.mark.parametrize(
    ("args", "path", "said"),
    [
        (["web.1"], "/apps/demo/dynos/web.1/actions/stop", "Stopping dyno web.1 on ⬢ demo"),
        (["-d", "run.1234"], "/apps/demo/dynos/run.1234/actions/stop", "Stopping dyno run.1234"),
        (["web"], "/apps/demo/formations/web/actions/stop", "Stopping web dynos on ⬢ demo"),
        (["-p", "run"], "/apps/demo/formations/run/actions/stop", "Stopping run dynos on ⬢ demo"),
    ],
)
def test_stop(kapal: Kapal, fake: FakeApi, args: list[str], path: str, said: str) -> None:
    fake.on("POST", path, {}, status=202)
    result = kapal("ps:stop", "-a", "demo", *args)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(said) and result.stderr.endswith("... done\n")
    assert_token(fake.one("POST", path))


def test_stop_needs_a_target(kapal: Kapal, fake: FakeApi) -> None:
    result = kapal("ps:stop", "-a", "demo")
    assert (result.exit_code, result.stderr) == (
        1,
        " ▸    Please specify a process type or dyno name to stop.\n",
    )
    assert fake.requests == []


def test_stop_of_an_unknown_dyno(kapal: Kapal, fake: FakeApi) -> None:
    message = "Couldn't find that dyno (web.9)."
    fake.error("POST", "/apps/demo/dynos/web.9/actions/stop", 404, "not_found", message)
    result = kapal("stop", "web.9", "-a", "demo")
    assert (result.exit_code, result.stderr) == (
        1,
        f"Stopping dyno web.9 on ⬢ demo... !\n ▸    {message}\n",
    )


def test_a_notice_from_the_api_is_printed_after_the_action(kapal: Kapal, fake: FakeApi) -> None:
    notice = "Your eco dyno hours are nearly used up: 0h 30m left this month."

    def answer(request: httpx.Request) -> httpx.Response:
        response = echo_formation(request)
        response.headers["Warning-Message"] = notice
        return response

    fake.on("GET", "/apps/demo/formation", [formation("web", 1)])
    fake.on("PATCH", "/apps/demo/formation", handler=answer)
    result = kapal("ps:scale", "-a", "demo", "web=1")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"Scaling dynos... done, now running web at 1:Eco\n ▸    Warning: {notice}\n"
    )
