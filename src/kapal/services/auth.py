"""Accounts, passwords (argon2) and API tokens (random, stored as SHA-256)."""

from __future__ import annotations

import base64
import binascii
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kapal.domain.errors import Conflict, InvalidParams, Unauthorized
from kapal.domain.hashes import hash_secret
from kapal.domain.names import validate_email
from kapal.services.context import Context
from kapal.store.models import Token, User

_hasher = PasswordHasher()
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes whatever it gets; don't let a request make it work for free


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(username, password) of an `Authorization: Basic ...` header, else None."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, password = decoded.partition(":")
    return username, password


def signup(ctx: Context, email: str, password: str) -> tuple[User, str]:
    """Create an account and its first API token."""
    email = validate_email(email)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidParams(
            f"Password must be between {MIN_PASSWORD} and {MAX_PASSWORD} characters."
        )
    taken = Conflict(f"An account with email {email} already exists.")
    try:
        with ctx.store.session() as s:
            if s.scalar(select(User).where(User.email == email)) is not None:
                raise taken
            user = User(email=email, password_hash=_hasher.hash(password))
            s.add(user)
            s.flush()
            token = _new_token(s, user, "kapal signup")
    except IntegrityError:  # the same email signed up at the same moment
        raise taken from None
    return user, token


def check_password(ctx: Context, email: str, password: str) -> User:
    if len(password) > MAX_PASSWORD:
        raise Unauthorized("Invalid email or password.")
    with ctx.store.session() as s:
        user = s.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        _hasher.hash(password)  # same cost either way: no user enumeration by timing
        raise Unauthorized("Invalid email or password.")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise Unauthorized("Invalid email or password.") from None
    return user


def login(ctx: Context, email: str, password: str, description: str = "kapal login") -> str:
    """Check the password and issue a new API token."""
    user = check_password(ctx, email, password)
    with ctx.store.session() as s:
        return _new_token(s, user, description)


def authenticate(ctx: Context, token: str) -> User:
    """The user owning this API token, or Unauthorized."""
    if not token:
        raise Unauthorized("Invalid credentials provided.")
    with ctx.store.session() as s:
        user = s.scalar(
            select(User)
            .join(Token, Token.user_id == User.id)
            .where(Token.token_hash == hash_secret(token))
        )
    if user is None:
        raise Unauthorized("Invalid credentials provided.")
    return user


def revoke(ctx: Context, token: str) -> None:
    with ctx.store.session() as s:
        row = s.scalar(select(Token).where(Token.token_hash == hash_secret(token)))
        if row is not None:
            s.delete(row)


def _new_token(s: Session, user: User, description: str) -> str:
    token = secrets.token_urlsafe(32)
    s.add(Token(user_id=user.id, token_hash=hash_secret(token), description=description))
    return token
