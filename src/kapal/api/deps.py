"""Request dependencies: the use-case context and the authenticated user."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, cast

from fastapi import Depends, Request

from kapal.domain.errors import Unauthorized
from kapal.services.auth import authenticate
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
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("Invalid credentials provided.") from None
        return decoded.partition(":")[2]
    raise Unauthorized("Invalid credentials provided.")


def get_user(request: Request, ctx: Annotated[Context, Depends(get_context)]) -> User:
    return authenticate(ctx, bearer_token(request))


CtxDep = Annotated[Context, Depends(get_context)]
UserDep = Annotated[User, Depends(get_user)]
