"""The buildpack contract: detect an app's language, then compile it in place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    """Like a classic buildpack's bin/detect and bin/compile, as Python objects."""

    @property
    def language(self) -> str:
        """Shown as `-----> <language> app detected`."""
        ...

    def detect(self, build_dir: Path) -> bool: ...

    async def compile(self, dirs: CompileDirs, out: BuildOutput) -> None:
        """Install what the app needs into dirs.build_dir; raise BuildFailed to stop."""
        ...


def detect(buildpacks: Sequence[Buildpack], build_dir: Path) -> Buildpack | None:
    """The first buildpack that recognises the app."""
    return next((bp for bp in buildpacks if bp.detect(build_dir)), None)
