"""The slug compiler: unpack the source, detect, compile, discover process types, compress."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kapal.build.buildpack import Buildpack, CompileDirs
from kapal.build.cgroup import BuildCgroup
from kapal.build.output import BuildOutput, human_size
from kapal.build.process import BuildFailed
from kapal.build.slugs import SlugStore
from kapal.build.sources import extract
from kapal.build.workspace import read_app_file
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


def read_procfile(build_dir: Path) -> dict[str, str] | None:
    """The process types the app's Procfile declares; None without one. A malformed
    Procfile stops the build."""
    data = read_app_file(build_dir, "Procfile")
    if data is None:
        return None
    try:
        return parse_procfile(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise BuildFailed("Procfile is not valid UTF-8 text.") from None
    except ProcfileError as exc:
        raise BuildFailed(exc.message) from None


async def choose(
    buildpacks: Sequence[Buildpack], build_dir: Path, explicit: bool
) -> list[tuple[Buildpack, str]]:
    """The buildpacks that run, with what each detected. Detection picks the first that
    applies; buildpacks the app set all run, and each must apply."""
    chosen = []
    for buildpack in buildpacks:
        await buildpack.fetch()
        language = await buildpack.detect(build_dir)
        if language is None and explicit:
            raise BuildFailed(f"App not compatible with buildpack: {buildpack.name}")
        if language is not None:
            chosen.append((buildpack, language))
            if not explicit:
                break
    if not chosen:
        raise BuildFailed(NO_LANGUAGE, hint=NO_LANGUAGE_HINT)
    return chosen


def declared_types(types: dict[str, str]) -> str:
    return f"Procfile declares types -> {', '.join(sorted(types)) or '(none)'}"


async def compile_slug(
    source: Path,
    dirs: CompileDirs,
    out: BuildOutput,
    buildpacks: Sequence[Buildpack],
    slugs: SlugStore,
    timeout: float = COMPILE_TIMEOUT,
    explicit: bool = False,
    cgroup: BuildCgroup | None = None,
) -> CompiledSlug:
    """Build the source tarball into a stored slug, writing the build output as it goes.
    `explicit`: the app set these buildpacks, so all of them run, in order; otherwise the
    first that detects the app does. `cgroup`, where the build's processes run, tells whether
    the memory cap is why it failed.

    A failure is printed (` !     ...`) and raised as BuildFailed."""
    language: str | None = None
    try:
        # Twice the slug limit: room for a source that compresses well, not for a bomb.
        await asyncio.to_thread(extract, source, dirs.build_dir, 2 * slugs.max_bytes)
        try:
            async with asyncio.timeout(timeout):
                chosen = await choose(buildpacks, dirs.build_dir, explicit)
                language = chosen[0][1]
                # Checked before the (slow) compile too, so a mistake is reported at once.
                declared = await asyncio.to_thread(read_procfile, dirs.build_dir)
                if declared is None and not chosen[-1][0].declares_defaults:
                    raise BuildFailed(NO_PROCFILE, hint=NO_PROCFILE_HINT)
                for buildpack, language in chosen:
                    if len(chosen) > 1:
                        out.step(f"Using buildpack: {buildpack.name}")
                    out.step(f"{language} app detected")
                    await buildpack.compile(dirs, out)
                defaults = await chosen[-1][0].release(dirs.build_dir)
                # Read again: a buildpack may have written or changed it while compiling.
                declared = await asyncio.to_thread(read_procfile, dirs.build_dir)
        except TimeoutError:
            limit = f"{timeout / 60:g} minute" if timeout >= 60 else f"{timeout:g} second"
            raise BuildFailed(f"Compiling the app took longer than the {limit} limit.") from None
        out.step("Discovering process types")
        if declared is None and not defaults:
            raise BuildFailed(NO_PROCFILE, hint=NO_PROCFILE_HINT)
        types = {**defaults, **(declared or {})}
        if declared is not None:
            out.detail(declared_types(declared))
        if defaults:
            out.detail(f"Default types for buildpack -> {', '.join(sorted(defaults))}")
        out.line()
        out.step("Compressing...")
        stored = await asyncio.to_thread(slugs.pack, dirs.build_dir)
        out.detail(f"Done: {human_size(stored.size)}")
        return CompiledSlug(stored.checksum, stored.size, types)
    except BuildFailed as exc:
        out.error(exc.message)
        for line in exc.hint.splitlines():
            out.detail(line)
        if cgroup is not None and await asyncio.to_thread(cgroup.oom_killed):
            out.error(
                f"The build ran out of memory: its processes may use {cgroup.limit // 2**20} MB "
                "together (KAPAL_BUILD_MEMORY), and the kernel stopped one that asked for more."
            )
        if language is not None:
            out.error(f"Push rejected, failed to compile {language} app.")
        raise
