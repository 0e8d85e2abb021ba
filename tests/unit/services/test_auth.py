from __future__ import annotations

import pytest
from sqlalchemy import select

from kapal.domain.errors import Conflict, InvalidParams, Unauthorized
from kapal.services import auth
from kapal.services.context import Context
from kapal.store.models import Token, User


def test_signup_then_token_authenticates(ctx: Context) -> None:
    user, token = auth.signup(ctx, "Ann@Example.com", "password123")
    assert user.email == "ann@example.com"
    assert auth.authenticate(ctx, token).id == user.id
    with ctx.store.session() as s:
        stored = s.scalar(select(User).where(User.id == user.id))
        hashes = list(s.scalars(select(Token.token_hash)))
    assert stored is not None and stored.password_hash.startswith("$argon2")
    assert token not in hashes and auth.hash_secret(token) in hashes


def test_duplicate_email_and_short_password(ctx: Context) -> None:
    auth.signup(ctx, "ann@example.com", "password123")
    with pytest.raises(Conflict):
        auth.signup(ctx, "ANN@example.com", "password123")
    with pytest.raises(InvalidParams, match="between 8 and 1024"):
        auth.signup(ctx, "bob@example.com", "short")


def test_login_checks_the_password(ctx: Context) -> None:
    auth.signup(ctx, "ann@example.com", "password123")
    token = auth.login(ctx, "ann@example.com", "password123")
    assert auth.authenticate(ctx, token).email == "ann@example.com"
    with pytest.raises(Unauthorized):
        auth.login(ctx, "ann@example.com", "wrong password")
    with pytest.raises(Unauthorized):
        auth.login(ctx, "nobody@example.com", "password123")


def test_revoked_tokens_stop_working(ctx: Context) -> None:
    _, token = auth.signup(ctx, "ann@example.com", "password123")
    auth.revoke(ctx, token)
    with pytest.raises(Unauthorized):
        auth.authenticate(ctx, token)
    with pytest.raises(Unauthorized):
        auth.authenticate(ctx, "")


def test_oversized_passwords_are_refused_before_hashing(ctx: Context) -> None:
    with pytest.raises(InvalidParams):
        auth.signup(ctx, "ann@example.com", "x" * 1025)
    auth.signup(ctx, "ann@example.com", "password123")
    with pytest.raises(Unauthorized):
        auth.login(ctx, "ann@example.com", "x" * 100_000)


def test_basic_credentials() -> None:
    assert auth.basic_credentials("Basic dXNlcjpwYTpzcw==") == ("user", "pa:ss")
    assert auth.basic_credentials("Bearer abc") is None
    assert auth.basic_credentials("Basic !!!") is None
    assert auth.basic_credentials(None) is None
