"""git smart HTTP on /{app}.git/...: Basic auth with the API token, then `git http-backend`."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from typing import cast

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from kapal.domain.errors import Unauthorized
from kapal.git.backend import BackendError, GitBackend
from kapal.git.repos import ensure_repo, git_env
from kapal.services.apps import get_app
from kapal.services.auth import authenticate, basic_credentials
from kapal.services.context import Context
from kapal.settings import Settings

log = logging.getLogger(__name__)

SERVICES = ("git-upload-pack", "git-receive-pack")
# A push runs the whole build (15 min) and the release phase (up to an hour) in its hook.
PUSH_TIMEOUT = 2 * 3600.0
CHALLENGE = {"WWW-Authenticate": 'Basic realm="kapal"'}

router = APIRouter()


def smart_service(method: str, path: str, service_param: str | None) -> str | None:
    """The git service a smart-HTTP request asks for; None for anything else (dumb HTTP)."""
    if method == "GET" and path == "info/refs" and service_param in SERVICES:
        return service_param
    if method == "POST" and path in SERVICES:
        return path
    return None


def basic_password(header: str | None) -> str | None:
    """The password of `Authorization: Basic ...`: the API token, whatever the username."""
    credentials = basic_credentials(header)
    return credentials[1] or None if credentials else None


def internal_api_url(settings: Settings) -> str:
    """How the hook, on this machine, reaches the API."""
    host = settings.bind
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:
            host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.api_port}"


def _challenge(message: str) -> Response:
    return Response(message + "\n", status_code=401, headers=CHALLENGE, media_type="text/plain")


@router.api_route("/{app}.git/{path:path}", methods=["GET", "POST"], include_in_schema=False)
async def git_smart_http(app: str, path: str, request: Request) -> Response:
    # kapal.api sits on this package's layer, so the Context is taken as api/deps.py does.
    ctx = cast(Context, request.app.state.ctx)
    service = smart_service(request.method, path, request.query_params.get("service"))
    if service is None:
        return Response("Only git's smart HTTP protocol is served here.\n", status_code=404)
    token = basic_password(request.headers.get("authorization"))
    if token is None:
        return _challenge("Authentication required: use your API token as the password.")
    try:
        user = await run_in_threadpool(authenticate, ctx, token)
    except Unauthorized as exc:
        return _challenge(exc.message)
    app_row = await run_in_threadpool(get_app, ctx, user, app)  # 404 / 403 as JSON errors

    settings = ctx.settings
    repo = await run_in_threadpool(
        ensure_repo, settings.repos_dir, app_row.name, max_push_bytes=settings.slug_max_bytes
    )
    env = git_env(settings.repos_dir, repo) | {
        "GIT_PROJECT_ROOT": str(settings.repos_dir),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{app_row.name}.git/{path}",
        "QUERY_STRING": request.url.query,
        "REQUEST_METHOD": request.method,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "REMOTE_USER": user.email,
        "REMOTE_ADDR": request.client.host if request.client else "",
    }
    length = request.headers.get("content-length")
    if length is not None and "transfer-encoding" not in request.headers:
        env["CONTENT_LENGTH"] = length
    for header, variable in (
        ("git-protocol", "GIT_PROTOCOL"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
    ):
        if value := request.headers.get(header):
            env[variable] = value
    if service == "git-receive-pack":
        # For the pre-receive hook, which builds as the pusher through the API.
        env |= {
            "KAPAL_API_URL": internal_api_url(settings),
            "KAPAL_TOKEN": token,
            "KAPAL_APP": app_row.name,
        }

    backend = await GitBackend.start(env, PUSH_TIMEOUT)
    try:
        head = await backend.exchange(request.stream())
    except BackendError as exc:
        log.warning("git %s for %s failed: %s", service, app_row.name, exc)
        return Response("git failed to answer.\n", status_code=502, media_type="text/plain")
    return StreamingResponse(backend.relay(), status_code=head.status, headers=dict(head.headers))
