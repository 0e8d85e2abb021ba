"""Request dependencies: the use-case context and the authenticated user."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from kapal.domain.errors import Unauthorized
from kapal.services.auth import authenticate, basic_credentials
from kapal.services.context import Context
from kapal.store.models import User


def get_context(request: Request) -> Context:
    return cast(Context, request.app.state.ctx)


def bearer_token(request: Request) -> str:
    """The API token from `Authorization: Bearer T` or Basic auth with T as password."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    credentials = basic_credentials(header)
    if credentials is not None:
        return credentials[1]
    raise Unauthorized("Invalid credentials provided.")


def get_user(request: Request, ctx: Annotated[Context, Depends(get_context)]) -> User:
    return authenticate(ctx, bearer_token(request))


CtxDep = Annotated[Context, Depends(get_context)]
UserDep = Annotated[User, Depends(get_user)]
