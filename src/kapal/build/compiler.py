"""The slug compiler: unpack the source, detect, compile, discover process types, compress."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kapal.build.buildpack import Buildpack, CompileDirs, detect
from kapal.build.output import BuildOutput, human_size
from kapal.build.process import BuildFailed
from kapal.build.slugs import SlugStore
from kapal.build.sources import extract
from kapal.domain.procfile import ProcfileError, parse_procfile

COMPILE_TIMEOUT = 15 * 60.0
NO_LANGUAGE = "No default language could be detected for this app."
NO_LANGUAGE_HINT = (
    "HINT: Kapal builds Python apps, recognised by a requirements.txt file in the root "
    "of the repository."
)
NO_PROCFILE = "No Procfile found in the root of the app."
NO_PROCFILE_HINT = 'HINT: add one that declares a web process, e.g. "web: gunicorn app:app".'


@dataclass(frozen=True)
class CompiledSlug:
    checksum: str
    size: int
    process_types: dict[str, str]


def read_procfile(build_dir: Path) -> dict[str, str]:
    """The app's process types; a missing or malformed Procfile stops the build."""
    path = build_dir / "Procfile"
    if not path.is_file():
        raise BuildFailed(NO_PROCFILE, hint=NO_PROCFILE_HINT)
    try:
        return parse_procfile(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BuildFailed("Procfile is not valid UTF-8 text.") from None
    except ProcfileError as exc:
        raise BuildFailed(exc.message) from None


def declared_types(types: dict[str, str]) -> str:
    return f"Procfile declares types -> {', '.join(sorted(types)) or '(none)'}"


async def compile_slug(
    source: Path,
    dirs: CompileDirs,
    out: BuildOutput,
    buildpacks: Sequence[Buildpack],
    slugs: SlugStore,
    timeout: float = COMPILE_TIMEOUT,
) -> CompiledSlug:
    """Build the source tarball into a stored slug, writing the build output as it goes.

    A failure is printed (` !     ...`) and raised as BuildFailed."""
    language: str | None = None
    try:
        # Twice the slug limit: room for a source that compresses well, not for a bomb.
        await asyncio.to_thread(extract, source, dirs.build_dir, 2 * slugs.max_bytes)
        buildpack = detect(buildpacks, dirs.build_dir)
        if buildpack is None:
            raise BuildFailed(NO_LANGUAGE, hint=NO_LANGUAGE_HINT)
        language = buildpack.language
        out.step(f"{language} app detected")
        # Checked before the (slow) install so a Procfile mistake is reported at once.
        types = await asyncio.to_thread(read_procfile, dirs.build_dir)
        try:
            async with asyncio.timeout(timeout):
                await buildpack.compile(dirs, out)
        except TimeoutError:
            limit = f"{timeout / 60:g} minute" if timeout >= 60 else f"{timeout:g} second"
            raise BuildFailed(f"Compiling the app took longer than the {limit} limit.") from None
        out.step("Discovering process types")
        out.detail(declared_types(types))
        out.line()
        out.step("Compressing...")
        stored = await asyncio.to_thread(slugs.pack, dirs.build_dir)
        out.detail(f"Done: {human_size(stored.size)}")
        return CompiledSlug(stored.checksum, stored.size, types)
    except BuildFailed as exc:
        out.error(exc.message)
        for line in exc.hint.splitlines():
            out.detail(line)
        if language is not None:
            out.error(f"Push rejected, failed to compile {language} app.")
        raise
