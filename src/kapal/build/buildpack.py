"""The buildpack contract: detect an app's language, then compile it in place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kapal.build.output import BuildOutput


@dataclass(frozen=True)
class CompileDirs:
    """Where a buildpack works: the app's files (slug root) and this app's persistent cache;
    and the app's config vars, which the classic buildpack API hands over as ENV_DIR."""

    build_dir: Path
    cache_dir: Path
    config_vars: Mapping[str, str] = field(default_factory=dict, repr=False)  # secrets


class Buildpack(Protocol):
    """The classic buildpack contract (bin/detect, bin/compile, bin/release), as objects:
    the built-in Python buildpack implements it directly, ClassicBuildpack by running a
    buildpack's scripts."""

    @property
    def name(self) -> str:
        """How users refer to it: `heroku/python`, a git URL, a path."""
        ...

    @property
    def declares_defaults(self) -> bool:
        """Whether release() may declare process types (if not, an app needs a Procfile,
        which is then checked before the slow compile)."""
        ...

    async def fetch(self) -> None:
        """Make the buildpack's files ready (clone, copy); raise BuildFailed if it cannot."""
        ...

    async def detect(self, build_dir: Path) -> str | None:
        """The app's language or framework, shown as `-----> <it> app detected`; None if
        this buildpack does not apply."""
        ...

    async def compile(self, dirs: CompileDirs, out: BuildOutput) -> None:
        """Install what the app needs into dirs.build_dir; raise BuildFailed to stop."""
        ...

    async def release(self, build_dir: Path) -> dict[str, str]:
        """Default process types, used for those the Procfile does not declare."""
        ...
