"""Startup checks (app.json `healthchecks`): a web dyno is up, and so routed, only once its
$PORT accepts and every check answered 2xx; a check that keeps failing fails its boot (R10)."""

from __future__ import annotations

import asyncio
import json

from tests.integration.runtime.harness import World, running

from kapal.runtime.dyno import Timing

# Answers /health with 503 until it was asked READY_AFTER times, then 200; anything else 200.
SERVER = """\
import http.server, os, sys
READY_AFTER = int(sys.argv[1])
asked = 0
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global asked
        status = 200
        if self.path == "/health":
            asked += 1
            status = 200 if asked >= READY_AFTER else 503
        body = b"ready" if status == 200 else b"not yet"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""
TIMING = Timing(boot_timeout=15.0, stop_grace=5.0, poll=0.02, unroute=0.2)


def app_json(**check: object) -> str:
    return json.dumps({"healthchecks": {"web": [{"type": "startup", "name": "ready", **check}]}})


def web_messages(world: World) -> list[str]:
    return world.log.messages("web.1", "kapal")


def test_a_web_dyno_is_up_only_once_its_startup_check_passes(world: World) -> None:
    files = {"server.py": SERVER, "app.json": app_json(path="/health", wait=0.05)}
    world.release(world.slug({"web": "exec python3 server.py 3"}, files))
    world.scale("web", 1)

    async def scenario() -> None:
        async with running(world, timing=TIMING):
            await world.eventually(
                lambda: (d := world.dynos().get("web.1")) is not None and d.state == "up",
                "web.1 up",
            )

    asyncio.run(scenario())
    messages = web_messages(world)
    failed = 'Startup check "ready" failed (attempt {} of 5): GET /health answered 503'
    start = messages.index(failed.format(1))
    assert messages[start : start + 4] == [
        failed.format(1),
        failed.format(2),
        'Startup check "ready" passed',
        "State changed from starting to up",
    ], world.log.dump()


def test_content_must_be_in_the_answer(world: World) -> None:
    files = {"server.py": SERVER, "app.json": app_json(path="/health", content="ready")}
    world.release(world.slug({"web": "exec python3 server.py 1"}, files))
    world.scale("web", 1)

    async def scenario() -> None:
        async with running(world, timing=TIMING):
            await world.eventually(
                lambda: "State changed from starting to up" in web_messages(world), "web.1 up"
            )

    asyncio.run(scenario())
    assert 'Startup check "ready" passed' in web_messages(world)


def test_a_check_that_keeps_failing_fails_the_boot(world: World) -> None:
    files = {"server.py": SERVER, "app.json": app_json(path="/health", attempts=2, wait=0.05)}
    world.release(world.slug({"web": "exec python3 server.py 1000"}, files))
    world.scale("web", 1)

    async def scenario() -> None:
        async with running(world, timing=TIMING):
            await world.eventually(
                lambda: "State changed from starting to crashed" in web_messages(world),
                "web.1 crashed",
            )

    asyncio.run(scenario())
    messages = web_messages(world)
    assert "State changed from starting to up" not in messages
    failed = 'Error R10 (Boot timeout) -> Web process failed its startup check "ready"'
    start = messages.index(failed)
    assert messages[start - 1].startswith('Startup check "ready" failed (attempt 2 of 2)')
    assert messages[start + 1 : start + 4] == [
        "Stopping process with SIGKILL",
        "Process exited with status 137",
        "State changed from starting to crashed",
    ]


def test_a_check_not_passed_within_the_boot_timeout_is_an_r10(world: World) -> None:
    files = {"server.py": SERVER, "app.json": app_json(path="/health", attempts=100, wait=0.1)}
    world.release(world.slug({"web": "exec python3 server.py 1000"}, files))
    world.scale("web", 1)
    timing = Timing(boot_timeout=1.0, stop_grace=5.0, poll=0.02, unroute=0.2)

    async def scenario() -> None:
        async with running(world, timing=timing):
            await world.eventually(
                lambda: "State changed from starting to crashed" in web_messages(world),
                "web.1 crashed",
            )

    asyncio.run(scenario())
    assert (
        'Error R10 (Boot timeout) -> Web process did not pass its startup check "ready" within '
        "1 seconds of launch" in web_messages(world)
    )


def test_a_bad_healthchecks_entry_is_shown_in_the_log(world: World) -> None:
    files = {"server.py": SERVER, "app.json": app_json(path="health")}
    world.release(world.slug({"web": "exec python3 server.py 1"}, files))
    world.scale("web", 1)

    async def scenario() -> None:
        async with running(world, timing=TIMING):
            await world.eventually(
                lambda: "State changed from starting to crashed" in web_messages(world),
                "web.1 crashed",
            )

    asyncio.run(scenario())
    assert (
        "app.json healthchecks.web[0].path: expected a path starting with /, without spaces."
        in web_messages(world)
    )


def test_other_process_types_and_apps_without_checks_are_unaffected(world: World) -> None:
    files = {"server.py": SERVER, "app.json": json.dumps({"healthchecks": {"worker": []}})}
    world.release(world.slug({"web": "exec python3 server.py 1000"}, files))
    world.scale("web", 1)

    async def scenario() -> None:
        async with running(world, timing=TIMING):
            await world.eventually(
                lambda: "State changed from starting to up" in web_messages(world), "web.1 up"
            )

    asyncio.run(scenario())
    assert not any(m.startswith("Startup check") for m in web_messages(world))
