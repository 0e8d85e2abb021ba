"""The dashboard in a real browser (Debian's Chromium through Playwright): sign up, land on
the apps list, create an app by name and one without, and see how to push to them.

The API app with the dashboard included is served by a real uvicorn on 127.0.0.1 (port 0) in
a background thread; no agent or router is needed for these pages.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

from kapal.api.app import create_api
from kapal.dashboard.routes import router
from kapal.domain.names import APP_NAME
from kapal.services.context import Context
from kapal.settings import Settings

pytestmark = pytest.mark.e2e

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Context]]:
    """The base URL of a running API + dashboard, and its context."""
    root: Path = tmp_path_factory.mktemp("dashboard-e2e")
    ctx = Context.create(Settings(data_dir=root, database_url=f"sqlite:///{root}/k.db"))
    config = uvicorn.Config(
        create_api(ctx, extra_routers=(router,)),
        host="127.0.0.1",
        port=0,
        ws="none",
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="dashboard-e2e-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", ctx
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        ctx.close()
    assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context()
            context.set_default_timeout(30_000)
            yield context.new_page()
            context.close()
        finally:
            browser.close()


def test_sign_up_and_create_apps(page: Page, dashboard: tuple[str, Context]) -> None:
    base, ctx = dashboard
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A blocked stylesheet or a CSP violation shows up here.
        if message.type == "error":
            problems.append(message.text)

    page.on("console", on_console)

    page.goto(base + "/")
    expect(page).to_have_url(base + "/login")
    page.get_by_role("link", name="Sign up").first.click()
    expect(page).to_have_url(base + "/signup")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password").fill("a long passphrase")
    page.get_by_role("button", name="Create account").click()

    expect(page).to_have_url(base + "/dashboard")
    expect(page.get_by_role("heading", name="Apps")).to_be_visible()
    expect(page.get_by_text("grace@example.com")).to_be_visible()
    # Our stylesheet applied: the top bar is dark.
    bar = page.locator("header.topbar")
    assert bar.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(29, 35, 48)"
    session = next(c for c in page.context.cookies() if c["name"] == "kapal_session")
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["path"] == "/"
    assert not session["domain"].startswith(".")  # host-only

    page.get_by_role("link", name="Create new app").click()
    expect(page).to_have_url(base + "/dashboard/new")
    page.get_by_label("App name").fill("browser-made")
    page.get_by_role("button", name="Create app").click()

    expect(page).to_have_url(re.compile(re.escape(base + "/dashboard/apps/browser-made")))
    expect(page.get_by_role("heading", name="browser-made", exact=True)).to_be_visible()
    expect(page.get_by_text("App created.")).to_be_visible()
    web_url = page.locator("a.web-url")
    expect(web_url).to_have_text(ctx.settings.web_url("browser-made"))
    expect(web_url).to_have_attribute("href", ctx.settings.web_url("browser-made"))
    expect(page.locator("code.git-url")).to_have_text(ctx.settings.git_url("browser-made"))
    expect(page.locator("pre.commands")).to_contain_text(
        f"git remote add kapal {ctx.settings.git_url('browser-made')}"
    )
    expect(page.locator("pre.commands")).to_contain_text("git push kapal main")
    expect(page.locator("#releases")).to_contain_text("Enable Logplex")

    page.get_by_role("link", name="Apps", exact=True).click()
    expect(page).to_have_url(base + "/dashboard")
    page.get_by_role("link", name="Create new app").click()
    page.get_by_role("button", name="Create app").click()  # no name: Kapal picks one
    expect(page).to_have_url(re.compile(re.escape(base) + r"/dashboard/apps/[a-z0-9-]+\?"))
    random_name = page.url.removeprefix(base + "/dashboard/apps/").partition("?")[0]
    assert APP_NAME.match(random_name), random_name
    assert random_name != "browser-made"
    expect(page.locator("code.git-url")).to_have_text(ctx.settings.git_url(random_name))

    page.get_by_role("link", name="Apps", exact=True).click()
    expect(page.get_by_role("link", name="browser-made")).to_be_visible()
    expect(page.get_by_role("link", name=random_name)).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(base + "/login")
    page.goto(base + "/dashboard")
    expect(page).to_have_url(base + "/login")
    assert problems == []
