"""An app's own error and maintenance pages (ERROR_PAGE_URL, MAINTENANCE_PAGE_URL)."""

import html
import re

import pytest
from tests.integration.router.router_harness import Client, app, closed_port, fields, running_router

from kapal.router import RouteTable

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

ERROR_URL = "https://pages.example.com/error.html?a=1&b=2"
DOWN_URL = "https://pages.example.com/down.html"


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, bool]]:
    return ("asyncio", {"use_uvloop": True})


def iframe_src(body: bytes) -> str:
    found = re.search(rb'<iframe src="([^"]*)"', body)
    assert found is not None, body
    return html.unescape(found.group(1).decode())


async def test_application_errors_show_the_apps_error_page() -> None:
    closed = await closed_port()
    pages = {"error_page_url": ERROR_URL, "maintenance_page_url": DOWN_URL}
    async with running_router(
        app(web_quantity=0, **pages),
        app("refused", "app-2", up=(closed.up(),), **pages),
        app("plain", "app-3", web_quantity=0),
    ) as (router, sink):
        client = await Client.open(router.port)
        h14 = await client.request(path="/x")
        h21 = await client.request(host="refused.localhost")
        head = await client.request("HEAD", path="/x")
        plain = await client.request(host="plain.localhost")
        await client.close()
    assert h14.status == h21.status == head.status == 503
    assert iframe_src(h14.body) == iframe_src(h21.body) == ERROR_URL
    assert head.body == b"" and head.header("content-length") == str(len(h14.body))
    assert b"<iframe" not in plain.body and b"kapal logs --tail" in plain.body
    codes = [(fields(m)["code"], fields(m)["bytes"]) for m in sink.messages]
    assert codes == [
        ("H14", str(len(h14.body))),
        ("H21", str(len(h21.body))),
        ("H14", "0"),
        ("H14", str(len(plain.body))),
    ]


async def test_maintenance_shows_the_apps_maintenance_page() -> None:
    current = {"route": app(maintenance=True, maintenance_page_url=DOWN_URL)}
    async with running_router(source=lambda: RouteTable.of(current["route"])) as (router, sink):
        client = await Client.open(router.port)
        custom = await client.request()
        current["route"] = app(maintenance=True)  # MAINTENANCE_PAGE_URL unset: a new table
        await router.refresh()
        own = await client.request()
        await client.close()
    assert custom.status == own.status == 503
    assert iframe_src(custom.body) == DOWN_URL
    assert b"<iframe" not in own.body and b"maintenance" in own.body
    for message in sink.messages:
        assert message.startswith('at=info code=H80 desc="Maintenance mode" method=GET')
