"""Sources: tarballs a push (or any client) uploads for a build, behind an unguessable URL."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from kapal.build.sources import SourceTooLarge, receive
from kapal.domain.errors import KapalError, NotFound
from kapal.domain.hashes import hash_secret
from kapal.services.context import Context
from kapal.settings import Settings
from kapal.store.models import Source, User, now

log = logging.getLogger(__name__)

SOURCE_TTL = timedelta(hours=1)
NO_SOURCE = "Couldn't find that source."


class PayloadTooLarge(KapalError):
    id = "bad_request"
    status = 413


@dataclass(frozen=True)
class SourceBlob:
    get_url: str
    put_url: str


def source_url(settings: Settings, source_id: str, secret: str) -> str:
    return f"{settings.api_url}/sources/{source_id}/{secret}"


def _source_file(settings: Settings, source_id: str) -> Path:
    return settings.sources_dir / f"{source_id}.tar.gz"


def create_source(ctx: Context, user: User) -> SourceBlob:
    """A place to upload one source tarball, valid for an hour; its URLs carry the secret."""
    secret = secrets.token_urlsafe(32)
    with ctx.store.session() as s:
        expired = list(s.scalars(select(Source).where(Source.created_at < now() - SOURCE_TTL)))
        for old in expired:
            s.delete(old)
        source = Source(user_id=user.id, secret_hash=hash_secret(secret))
        s.add(source)
        s.flush()
    for old in expired:
        _source_file(ctx.settings, old.id).unlink(missing_ok=True)
    url = source_url(ctx.settings, source.id, secret)
    return SourceBlob(get_url=url, put_url=url)


def _find_source(ctx: Context, source_id: str, secret: str) -> Source:
    with ctx.store.session() as s:
        source = s.get(Source, source_id)
    if (
        source is None
        or not hmac.compare_digest(source.secret_hash, hash_secret(secret))
        or source.created_at < now() - SOURCE_TTL
    ):
        raise NotFound(NO_SOURCE)
    return source


async def upload_source(
    ctx: Context, source_id: str, secret: str, chunks: AsyncIterable[bytes]
) -> int:
    """Store the uploaded tarball (at most slug_max_bytes); its size."""
    source = await asyncio.to_thread(_find_source, ctx, source_id, secret)
    try:
        size = await receive(
            _source_file(ctx.settings, source.id), chunks, ctx.settings.slug_max_bytes
        )
    except SourceTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    await asyncio.to_thread(_mark_uploaded, ctx, source.id)
    return size


def _mark_uploaded(ctx: Context, source_id: str) -> None:
    with ctx.store.session() as s:
        s.execute(update(Source).where(Source.id == source_id).values(uploaded=True))


def uploaded_source(ctx: Context, source_id: str, secret: str) -> Path:
    """The stored tarball behind a source URL."""
    source = _find_source(ctx, source_id, secret)
    path = _source_file(ctx.settings, source.id)
    if not source.uploaded or not path.is_file():
        raise NotFound("Nothing has been uploaded to this source yet.")
    return path


def parse_source_url(settings: Settings, url: str) -> tuple[str, str] | None:
    """(source id, secret) of a URL from create_source, also in its 127.0.0.1 spelling."""
    for base in (settings.api_url, f"http://127.0.0.1:{settings.api_port}"):
        prefix = f"{base}/sources/"
        if url.startswith(prefix):
            source_id, _, secret = url.removeprefix(prefix).partition("/")
            if source_id and secret and "/" not in secret:
                return source_id, secret
    return None


# --- build rows ----------------------------------------------------------------------------
