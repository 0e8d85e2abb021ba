"""Sign-up, log-in (Heroku's POST /oauth/authorizations with Basic auth), log-out, account."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from kapal.api import serializers
from kapal.api.deps import CtxDep, UserDep, bearer_token
from kapal.domain.errors import Unauthorized
from kapal.services import auth
from kapal.services.eco import get_quota
from kapal.store.models import User

router = APIRouter()


class Credentials(BaseModel):
    email: str
    password: str


def _authorization(user: User, token: str) -> dict[str, Any]:
    return {
        "id": user.id,
        "access_token": {"token": token, "expires_in": None},
        "user": {"id": user.id, "email": user.email},
        "scope": ["global"],
    }


@router.post("/signup", status_code=201)
def signup(body: Credentials, ctx: CtxDep) -> dict[str, Any]:
    user, token = auth.signup(ctx, body.email, body.password)
    return _authorization(user, token)


@router.post("/oauth/authorizations", status_code=201)
def create_authorization(request: Request, ctx: CtxDep) -> dict[str, Any]:
    credentials = auth.basic_credentials(request.headers.get("authorization"))
    if credentials is None:
        raise Unauthorized("Log in with your email and password (HTTP Basic auth).")
    email, password = credentials
    token = auth.login(ctx, email, password)
    return _authorization(auth.authenticate(ctx, token), token)


@router.delete("/oauth/authorizations/current")
def revoke_authorization(request: Request, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    auth.revoke(ctx, bearer_token(request))
    return {"id": user.id}


@router.get("/account")
def get_account(user: UserDep) -> dict[str, Any]:
    return serializers.account(user)


@router.get("/accounts/{account}/actions/get-quota")
def account_quota(account: str, ctx: CtxDep, user: UserDep) -> dict[str, Any]:
    """Eco dyno hours this month, in seconds (what `heroku ps` shows for an eco app)."""
    return get_quota(ctx, user, account).as_json()
