"""Sign up, log in, log out: the pages that start and end a dashboard session."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from kapal.dashboard import sessions
from kapal.dashboard.access import FormStr, login_for_post, safe_next
from kapal.dashboard.render import forbidden, page, redirect
from kapal.domain.errors import Conflict, InvalidParams, Unauthorized
from kapal.services import auth
from kapal.store.models import User

router = APIRouter(include_in_schema=False)


def _logged_in(request: Request, user: User, target: str) -> Response:
    """A fresh session (never one the browser brought along), then on to the target."""
    ctx = sessions.context(request)
    sessions.end(ctx, request.cookies.get(sessions.cookie_name(request)))
    response = redirect(target)
    sessions.set_cookie(request, response, sessions.start(ctx, user))
    return response


@router.get("/")
def landing(request: Request) -> Response:
    return redirect("/dashboard" if sessions.current(request) else "/login")


@router.get("/signup")
def signup_page(request: Request) -> Response:
    if sessions.current(request):
        return redirect("/dashboard")
    return page("signup.html", login=None, email="")


# The API owns POST /signup (JSON), so the form posts here.
@router.post("/dashboard/signup")
def signup(request: Request, email: FormStr = "", password: FormStr = "") -> Response:
    if not sessions.same_origin(request):
        return forbidden(None)
    ctx = sessions.context(request)
    try:
        user, token = auth.signup(ctx, email, password)
    except (InvalidParams, Conflict) as exc:
        return page("signup.html", login=None, status=exc.status, error=exc.message, email=email)
    # Signing up makes an API token too; the browser never sees it, so it must not linger.
    auth.revoke(ctx, token)
    return _logged_in(request, user, "/dashboard")


@router.get("/dashboard/signup")
def signup_again() -> Response:
    return redirect("/signup")


@router.get("/login")
def login_page(request: Request, next: str = "/dashboard") -> Response:
    if sessions.current(request):
        return redirect(safe_next(next))
    return page("login.html", login=None, email="", next=safe_next(next))


@router.post("/login")
def login(
    request: Request, email: FormStr = "", password: FormStr = "", next: FormStr = "/dashboard"
) -> Response:
    if not sessions.same_origin(request):
        return forbidden(None)
    try:
        user = auth.check_password(sessions.context(request), email, password)
    except Unauthorized:
        # The same words whether or not the email has an account.
        error = "Invalid email or password."
        return page(
            "login.html", login=None, status=400, error=error, email=email, next=safe_next(next)
        )
    return _logged_in(request, user, safe_next(next))


@router.get("/logout")
def logout_page(request: Request) -> Response:
    login = sessions.current(request)
    if login is None:
        return redirect("/login")
    return page("logout.html", login=login)


@router.post("/logout")
def logout(request: Request, csrf_token: FormStr = "") -> Response:
    login = login_for_post(request, csrf_token)
    if isinstance(login, Response):
        return login
    sessions.end(sessions.context(request), request.cookies.get(sessions.cookie_name(request)))
    response = redirect("/login")
    sessions.clear_cookie(request, response)
    return response
