"""The apps list, creating an app, and the app page with its forms."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response

from kapal.dashboard import sessions
from kapal.dashboard.access import FormStr, login_for_page, login_for_post
from kapal.dashboard.app_view import SIZES, load_app_view
from kapal.dashboard.render import app_url, error_page, page, redirect
from kapal.dashboard.sessions import Login
from kapal.domain.errors import Forbidden, InvalidParams, KapalError, NotFound
from kapal.services import apps, config, formation

router = APIRouter(include_in_schema=False)

# What a successful form says after its redirect; the URL names a key, never the text, so
# nobody can make the dashboard display words of their choosing.
NOTICES = {
    "created": "App created.",
    "config": "Config vars updated: a new release was created and dynos restart with it.",
    "unchanged": "Config vars unchanged: no new release.",
    "scaled": "Formation updated.",
    "restarted": "Dynos are restarting.",
    "destroyed": "App destroyed.",
}


def _notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


@router.get("/dashboard")
def apps_list(request: Request) -> Response:
    login = login_for_page(request)
    if isinstance(login, Response):
        return login
    mine = apps.list_apps(sessions.context(request), login.user)
    return page("apps.html", login=login, apps=mine, notice=_notice(request))


@router.get("/dashboard/new")
def new_app_page(request: Request) -> Response:
    login = login_for_page(request)
    if isinstance(login, Response):
        return login
    return page("new.html", login=login, name="")


@router.post("/dashboard/new")
def create_app(request: Request, csrf_token: FormStr = "", name: FormStr = "") -> Response:
    login = login_for_post(request, csrf_token)
    if isinstance(login, Response):
        return login
    name = name.strip()
    try:
        app = apps.create_app(sessions.context(request), login.user, name or None)
    except KapalError as exc:
        return page("new.html", login=login, status=exc.status, error=exc.message, name=name)
    return redirect(app_url(app.name) + "?notice=created")


def _app_page(
    request: Request, login: Login, name: str, error: str | None, status: int
) -> Response:
    try:
        view = load_app_view(sessions.context(request), login.user, name)
    except (Forbidden, NotFound) as exc:
        return error_page(login, exc)
    notice = None if error else _notice(request)
    return page(
        "app.html", login=login, status=status, view=view, sizes=SIZES, error=error, notice=notice
    )


@router.get("/dashboard/apps/{name}")
def app_page(request: Request, name: str) -> Response:
    login = login_for_page(request)
    if isinstance(login, Response):
        return login
    return _app_page(request, login, name, None, 200)


# Where on the app page each notice belongs.
_ANCHORS = {"config": "config", "unchanged": "config", "scaled": "formation", "restarted": "dynos"}


def _act(request: Request, csrf_token: str, name: str, action: Callable[[Login], str]) -> Response:
    """Run one form's use-case (it returns its notice): redirect to the app page on success,
    show the error on it otherwise (a friendly 403/404 page when the app is not this user's)."""
    login = login_for_post(request, csrf_token)
    if isinstance(login, Response):
        return login
    try:
        notice = action(login)
    except (Forbidden, NotFound) as exc:
        return error_page(login, exc)
    except KapalError as exc:
        return _app_page(request, login, name, exc.message, exc.status)
    return redirect(f"{app_url(name)}?notice={notice}#{_ANCHORS[notice]}")


def _change_config(
    request: Request, name: str, changes: dict[str, str | None]
) -> Callable[[Login], str]:
    def action(login: Login) -> str:
        _, release = config.update_config(sessions.context(request), login.user, name, changes)
        return "config" if release is not None else "unchanged"

    return action


@router.post("/dashboard/apps/{name}/config")
def set_config(
    request: Request, name: str, csrf_token: FormStr = "", key: FormStr = "", value: FormStr = ""
) -> Response:
    return _act(request, csrf_token, name, _change_config(request, name, {key.strip(): value}))


@router.post("/dashboard/apps/{name}/config/unset")
def unset_config(
    request: Request, name: str, csrf_token: FormStr = "", key: FormStr = ""
) -> Response:
    return _act(request, csrf_token, name, _change_config(request, name, {key: None}))


@router.post("/dashboard/apps/{name}/formation")
def scale(
    request: Request,
    name: str,
    csrf_token: FormStr = "",
    type: FormStr = "",
    quantity: FormStr = "",
    size: FormStr = "",
) -> Response:
    def action(login: Login) -> str:
        try:
            count = int(quantity.strip())
        except ValueError:
            raise InvalidParams("Quantity must be a whole number.") from None
        update = formation.Update(type=type, quantity=count, size=size or None)
        formation.scale(sessions.context(request), login.user, name, [update])
        return "scaled"

    return _act(request, csrf_token, name, action)


@router.post("/dashboard/apps/{name}/restart")
def restart(request: Request, name: str, csrf_token: FormStr = "") -> Response:
    def action(login: Login) -> str:
        formation.restart(sessions.context(request), login.user, name)
        return "restarted"

    return _act(request, csrf_token, name, action)


@router.post("/dashboard/apps/{name}/destroy")
def destroy(
    request: Request, name: str, csrf_token: FormStr = "", confirm: FormStr = ""
) -> Response:
    login = login_for_post(request, csrf_token)
    if isinstance(login, Response):
        return login
    try:
        # A str, never None: an empty confirmation must fail the name check too.
        apps.destroy_app(sessions.context(request), login.user, name, confirm=confirm.strip())
    except (Forbidden, NotFound) as exc:
        return error_page(login, exc)
    except KapalError as exc:
        return _app_page(request, login, name, exc.message, exc.status)
    return redirect("/dashboard?notice=destroyed")
