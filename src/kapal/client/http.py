"""KapalClient: typed methods over Kapal's Platform API v3 (Heroku paths and JSON)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Self, cast
from urllib.parse import quote

import httpx

from kapal.client.errors import KapalConnectionError
from kapal.client.responses import api_error, sse_data, stream_error
from kapal.client.types import (
    Account,
    Addon,
    App,
    Authorization,
    Build,
    Dyno,
    Formation,
    FormationUpdate,
    LogSession,
    PlatformTls,
    Quota,
    Release,
)

ACCEPT = "application/vnd.heroku+json; version=3"
USER_AGENT = "kapal-cli/0.1"
DEFAULT_TIMEOUT = 30.0


def _seg(value: str) -> str:
    """One path segment, quoted so a name can never change the path."""
    return quote(value, safe="")


class KapalClient:
    """One API endpoint and one token. `transport` is the seam tests use (httpx.MockTransport)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        # Notices the API sends in Warning-Message headers, each passed on once.
        self.on_warning = on_warning
        self._warned: set[str] = set()
        # The token is added per API request, never as a default header: stream URLs
        # (logplex_url) carry their own capability and may live on another host.
        self._http = httpx.Client(
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> httpx.Response:
        """Send one API request; raise KapalApiError on a non-2xx answer."""
        url = self.base_url + path
        sent = {"Accept": ACCEPT, **(headers or {})}
        if auth is None and self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        try:
            response = self._http.request(
                method,
                url,
                json=json_body,
                headers=sent,
                auth=httpx.BasicAuth(*auth) if auth else None,
            )
        except httpx.TransportError as exc:
            raise KapalConnectionError(self.base_url, str(exc) or type(exc).__name__) from exc
        self._pass_warnings(response)
        if response.is_error:
            raise api_error(response)
        return response

    def _pass_warnings(self, response: httpx.Response) -> None:
        if self.on_warning is None:
            return
        for text in response.headers.get_list("Warning-Message"):
            if text not in self._warned:
                self._warned.add(text)
                self.on_warning(text)

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        json_body: object = None,
        timeout: httpx.Timeout | None = None,
    ) -> Iterator[httpx.Response]:
        """An API request whose answer is read as it arrives (downloads, long waits): by
        default connecting may take DEFAULT_TIMEOUT, reading has no limit."""
        sent = {"Accept": ACCEPT}
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        try:
            with self._http.stream(
                method,
                self.base_url + path,
                json=json_body,
                headers=sent,
                timeout=timeout or httpx.Timeout(DEFAULT_TIMEOUT, read=None),
            ) as response:
                if response.is_error:
                    response.read()
                    raise api_error(response)
                yield response
        except httpx.TransportError as exc:
            raise KapalConnectionError(self.base_url, str(exc) or type(exc).__name__) from exc

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        return response.json()

    # --- accounts --------------------------------------------------------------------------

    def signup(self, email: str, password: str) -> Authorization:
        body = {"email": email, "password": password}
        return cast(Authorization, self._json("POST", "/signup", json_body=body))

    def login(self, email: str, password: str, description: str = "Kapal CLI") -> Authorization:
        """Create an API token with HTTP Basic email:password, like `heroku login -i`."""
        return cast(
            Authorization,
            self._json(
                "POST",
                "/oauth/authorizations",
                json_body={"description": description},
                auth=(email, password),
            ),
        )

    def revoke_token(self) -> None:
        self.request("DELETE", "/oauth/authorizations/current")

    def account(self) -> Account:
        return cast(Account, self._json("GET", "/account"))

    def quota(self, account: str = "~") -> Quota:
        """The account's eco dyno hours this month (seconds)."""
        path = f"/accounts/{_seg(account)}/actions/get-quota"
        return cast(Quota, self._json("GET", path))

    def platform_tls(self) -> PlatformTls:
        """Kapal's ports and local CA certificate (no token needed)."""
        return cast(PlatformTls, self._json("GET", "/platform/tls"))

    # --- apps ------------------------------------------------------------------------------

    def list_apps(self) -> list[App]:
        return cast(list[App], self._json("GET", "/apps"))

    def create_app(self, name: str | None = None) -> App:
        body = {"name": name} if name else {}
        return cast(App, self._json("POST", "/apps", json_body=body))

    def get_app(self, app: str) -> App:
        return cast(App, self._json("GET", f"/apps/{_seg(app)}"))

    def update_app(self, app: str, *, maintenance: bool) -> App:
        body = {"maintenance": maintenance}
        return cast(App, self._json("PATCH", f"/apps/{_seg(app)}", json_body=body))

    def destroy_app(self, app: str) -> App | None:
        return cast(App | None, self._json("DELETE", f"/apps/{_seg(app)}"))

    # --- formation and dynos ---------------------------------------------------------------

    def formation(self, app: str) -> list[Formation]:
        return cast(list[Formation], self._json("GET", f"/apps/{_seg(app)}/formation"))

    def scale(self, app: str, updates: list[FormationUpdate]) -> list[Formation]:
        path = f"/apps/{_seg(app)}/formation"
        return cast(list[Formation], self._json("PATCH", path, json_body={"updates": updates}))

    def dynos(self, app: str) -> list[Dyno]:
        return cast(list[Dyno], self._json("GET", f"/apps/{_seg(app)}/dynos"))

    def create_dyno(
        self,
        app: str,
        command: str,
        *,
        attach: bool,
        size: str | None = None,
        env: Mapping[str, str] | None = None,
        tty: bool | None = None,
    ) -> Dyno:
        body: dict[str, object] = {"command": command, "attach": attach}
        if size:
            body["size"] = size
        if env:
            body["env"] = dict(env)
        if tty is not None:
            body["tty"] = tty
        return cast(Dyno, self._json("POST", f"/apps/{_seg(app)}/dynos", json_body=body))

    def restart(
        self, app: str, *, dyno: str | None = None, process_type: str | None = None
    ) -> None:
        """Restart one dyno (`web.1`), one process type (`web`) or, with neither, all dynos."""
        if dyno:
            path = f"/apps/{_seg(app)}/dynos/{_seg(dyno)}"
        elif process_type:
            path = f"/apps/{_seg(app)}/formations/{_seg(process_type)}"
        else:
            path = f"/apps/{_seg(app)}/dynos"
        self.request("DELETE", path)

    def stop(self, app: str, *, dyno: str | None = None, process_type: str | None = None) -> None:
        """Stop one dyno (`web.1`, `run.1234`) or every dyno of a process type (`web`, `run`)."""
        if dyno:
            path = f"/apps/{_seg(app)}/dynos/{_seg(dyno)}/actions/stop"
        elif process_type:
            path = f"/apps/{_seg(app)}/formations/{_seg(process_type)}/actions/stop"
        else:
            raise ValueError("stop needs a dyno name or a process type")
        self.request("POST", path)

    # --- config vars -----------------------------------------------------------------------

    def config_vars(self, app: str) -> dict[str, str]:
        return cast(dict[str, str], self._json("GET", f"/apps/{_seg(app)}/config-vars"))

    def update_config_vars(self, app: str, changes: Mapping[str, str | None]) -> dict[str, str]:
        """Set (string) or remove (None) config vars; returns all vars after the change."""
        path = f"/apps/{_seg(app)}/config-vars"
        return cast(dict[str, str], self._json("PATCH", path, json_body=dict(changes)))

    # --- builds ----------------------------------------------------------------------------

    def builds(self, app: str) -> list[Build]:
        """The app's builds, oldest first."""
        return cast(list[Build], self._json("GET", f"/apps/{_seg(app)}/builds"))

    def build(self, app: str, build_id: str) -> Build:
        return cast(Build, self._json("GET", f"/apps/{_seg(app)}/builds/{_seg(build_id)}"))

    def purge_build_cache(self, app: str) -> None:
        self.request("DELETE", f"/apps/{_seg(app)}/build-cache")

    # --- buildpacks ------------------------------------------------------------------------

    def buildpacks(self, app: str) -> list[str]:
        """The buildpack URLs the app's next build runs, in order."""
        installations = self._json("GET", f"/apps/{_seg(app)}/buildpack-installations")
        return [item["buildpack"]["url"] for item in installations]

    def set_buildpacks(self, app: str, urls: list[str]) -> list[str]:
        """Replace the app's buildpacks (an empty list: detect them); the new list."""
        body = {"updates": [{"buildpack": url} for url in urls]}
        path = f"/apps/{_seg(app)}/buildpack-installations"
        return [item["buildpack"]["url"] for item in self._json("PUT", path, json_body=body)]

    # --- releases --------------------------------------------------------------------------

    def releases(self, app: str, *, max: int = 200) -> list[Release]:
        """The newest `max` releases, newest first."""
        headers = {"Range": f"version ..; order=desc,max={max}"}
        path = f"/apps/{_seg(app)}/releases"
        return cast(list[Release], self._json("GET", path, headers=headers))

    def release(self, app: str, ident: str) -> Release:
        """By id or version (`7` or `v7`)."""
        path = f"/apps/{_seg(app)}/releases/{_seg(ident)}"
        return cast(Release, self._json("GET", path))

    def rollback(self, app: str, release: str) -> Release:
        """A new release with the slug and config of `release` (id or version)."""
        path = f"/apps/{_seg(app)}/releases"
        return cast(Release, self._json("POST", path, json_body={"release": release}))

    # --- logs ------------------------------------------------------------------------------

    def create_log_session(
        self,
        app: str,
        *,
        lines: int = 100,
        tail: bool = False,
        dyno: str | None = None,
        source: str | None = None,
        grep: str | None = None,
        since: str | None = None,
    ) -> LogSession:
        """`since` is an ISO 8601 time with its offset."""
        body: dict[str, object] = {"lines": lines, "tail": tail}
        for name, value in (("dyno", dyno), ("source", source), ("grep", grep), ("since", since)):
            if value:
                body[name] = value
        path = f"/apps/{_seg(app)}/log-sessions"
        return cast(LogSession, self._json("POST", path, json_body=body))

    def stream_log(self, url: str) -> Iterator[str]:
        """Yield the lines a log session URL streams until the server ends it. The URL is its
        own credential: no Authorization header is sent, and errors never repeat it."""
        parts = httpx.URL(url)
        origin = f"{parts.scheme}://{parts.netloc.decode()}"
        timeout = httpx.Timeout(DEFAULT_TIMEOUT, read=None)  # tails wait for lines indefinitely
        try:
            with self._http.stream(
                "GET", url, headers={"Accept": "text/plain"}, timeout=timeout
            ) as response:
                if response.is_error:
                    response.read()
                    raise stream_error(response)
                sse = response.headers.get("content-type", "").startswith("text/event-stream")
                lines = response.iter_lines()
                yield from (sse_data(lines) if sse else lines)
        except httpx.TransportError as exc:
            raise KapalConnectionError(origin, str(exc) or type(exc).__name__) from exc

    # --- add-ons ---------------------------------------------------------------------------

    def addon_services(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._json("GET", "/addon-services"))

    def addons(self, app: str) -> list[Addon]:
        return cast(list[Addon], self._json("GET", f"/apps/{_seg(app)}/addons"))

    def create_addon(
        self,
        app: str,
        plan: str,
        *,
        attachment_name: str | None = None,
        name: str | None = None,
        config: Mapping[str, str] | None = None,
    ) -> Addon:
        """Provision `service[:plan]` for the app."""
        body: dict[str, object] = {"plan": plan}
        if attachment_name:
            body["attachment"] = {"name": attachment_name}
        if name:
            body["name"] = name
        if config:
            body["config"] = dict(config)
        return cast(Addon, self._json("POST", f"/apps/{_seg(app)}/addons", json_body=body))

    def addon(self, app: str, ident: str) -> Addon:
        return cast(Addon, self._json("GET", f"/apps/{_seg(app)}/addons/{_seg(ident)}"))

    def destroy_addon(self, app: str, ident: str) -> Addon | None:
        path = f"/apps/{_seg(app)}/addons/{_seg(ident)}"
        return cast(Addon | None, self._json("DELETE", path))
