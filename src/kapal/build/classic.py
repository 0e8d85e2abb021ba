"""Classic buildpacks, run unchanged: `bin/detect BUILD_DIR`, `bin/compile BUILD_DIR CACHE_DIR
ENV_DIR`, `bin/release BUILD_DIR`, from a git URL or a directory on this machine.

Everything a buildpack does, fetching it included, runs as the build user (the app's uid)
when the platform is root: a buildpack path names only what that user could read anyway. Its
scripts run in the build's jail when there is one (BUILD_DIR is then /app; the buildpack's
directory, CACHE_DIR and ENV_DIR are at their own paths), and so does fetching it (git or cp,
the buildpack's source shown read-only at its own path). The fetch's git reads no config and
runs no hook the build could have written (an earlier buildpack's scripts can write in the
buildpacks' directory, their HOME): its global config is the platform's, hooks are off. They
get the app's config vars as ENV_DIR files, and an `export` file a buildpack leaves in its
directory is sourced before the buildpacks after it, as on Heroku.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from kapal.build.buildpack import CompileDirs
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed, last_words, query, run_step
from kapal.build.workspace import hand_over
from kapal.domain.buildpacks import BuildpackRef, shown
from kapal.domain.procfile import ProcfileError, parse_procfile
from kapal.sandbox.build_jail import Bind, BuildJail
from kapal.system_users import RunAs, unprivileged

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 120.0
DETECT_TIMEOUT = 60.0
# Ubuntu 22.04's stack: buildpacks check STACK against the names they know, and binaries
# built for it run on the newer glibc of Debian 12, which Kapal runs on.
STACK = "heroku-22"
GITCONFIG = ".gitconfig"
# The fetch's own git config, in the platform's directory of the build's ENV_DIRs (0711, root's
# when the platform is root): the build cannot write it. Read-only for the build user's git:
# a local repository another user owns may be cloned (it reads only what it may anyway); no
# hook runs and no `ext::` command.
FETCH_GITCONFIG = "fetch.gitconfig"
FETCH_GIT_CONFIG = (
    '[safe]\n\tdirectory = *\n[core]\n\thooksPath = /dev/null\n[protocol "ext"]\n\tallow = never\n'
)
# Also on the command line, whichever config git would read.
FETCH_GIT_OPTIONS = ("-c", "core.hooksPath=/dev/null", "-c", "protocol.ext.allow=never")
NO_HOME = "/nonexistent"
# `export` files run as shell code before each later buildpack's bin/compile.
WITH_EXPORTS = 'n=$1; shift; while [ "$n" -gt 0 ]; do . "$1"; shift; n=$((n - 1)); done; exec "$@"'


class ClassicBuildpack:
    """One buildpack of an app's list, fetched into `directory` (which must not exist yet)."""

    declares_defaults = True  # bin/release may name default process types

    def __init__(
        self,
        ref: BuildpackRef,
        directory: Path,
        env_dir: Path,
        exports: list[Path],
        *,
        search_path: str = "/usr/local/bin:/usr/bin:/bin",
        stack: str = STACK,
        build_user: Callable[[], RunAs | None] = unprivileged,
        jail: BuildJail | None = None,
    ) -> None:
        """`env_dir`: where its ENV_DIR goes, in a directory the build user cannot write to
        (the platform writes the files); `exports`: shared by the buildpacks of one build,
        each adds its `export` file; `jail`: where its scripts run, if anywhere."""
        self.ref = ref
        self.directory = directory
        self.env_dir = env_dir
        self.exports = exports
        self.search_path = search_path
        self.stack = stack
        self.build_user = build_user
        self.jail = jail
        self.run_as: RunAs | None = None

    @property
    def name(self) -> str:
        return shown(self.ref.url)

    def env(self, home: Path) -> dict[str, str]:
        """All a buildpack's scripts see of the platform: nothing of its own environment. HOME
        is the build's scratch directory, so nothing written there ends up in the slug."""
        return {"PATH": self.search_path, "HOME": str(home), "LANG": "C.UTF-8", "STACK": self.stack}

    async def fetch(self) -> None:
        """Fetch the buildpack into its directory: in the build's jail when there is one, as
        the build user, from /, with a HOME that does not exist and (git) only the platform's
        config. Its directory must not exist yet: an earlier buildpack may have put something
        (a link) in its place."""
        self.run_as = await asyncio.to_thread(self.build_user)
        parent = self.directory.parent
        await asyncio.to_thread(_fetch_directory, parent, self.run_as)
        if await asyncio.to_thread(os.path.lexists, self.directory):
            raise BuildFailed(
                f"Failed to fetch the buildpack {self.name}",
                hint=f"{self.directory} exists already (made by an earlier buildpack).",
            )
        env = {"PATH": self.search_path, "HOME": NO_HOME, "LANG": "C.UTF-8"}
        binds: list[Bind] = []
        if self.ref.kind == "git":
            config = await asyncio.to_thread(_fetch_git_config, self.env_dir.parent)
            argv = ["git", *FETCH_GIT_OPTIONS, "clone", "--quiet", "--depth", "1"]
            if self.ref.ref:
                argv += ["--branch", self.ref.ref]
            argv += ["--", self.ref.location, str(self.directory)]
            env |= {
                "GIT_TERMINAL_PROMPT": "0",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": str(config),
                "GIT_ALLOW_PROTOCOL": "https:http:git:file",
            }
            source = _local_repository(self.ref.location)
            binds.append(Bind(config))
        else:
            argv = ["cp", "-R", "--", f"{self.ref.location}/.", str(self.directory)]
            await asyncio.to_thread(_make_directory, self.directory, self.run_as)
            source = Path(self.ref.location)
        jail = self.jail
        if jail is not None:
            # The source first: a bind of the build's own below it is then still there.
            shown_binds = ([Bind(source)] if source is not None else []) + [*jail.binds, *binds]
            jail = replace(jail, binds=tuple(shown_binds))
        status, _, stderr = await query(
            argv, env=env, timeout=FETCH_TIMEOUT, cwd=Path("/"), run_as=self.run_as, jail=jail
        )
        if status != 0:
            why = shown(last_words(stderr))
            raise BuildFailed(f"Failed to fetch the buildpack {self.name}", hint=why)
        for script in ("detect", "compile"):
            if not os.access(self.directory / "bin" / script, os.F_OK):
                raise BuildFailed(f"{self.name} is not a buildpack: it has no bin/{script}.")

    async def detect(self, build_dir: Path) -> str | None:
        status, stdout, _ = await self._script("detect", [str(build_dir)], build_dir)
        if status != 0:
            return None
        name = stdout.strip().splitlines()[:1]
        return name[0][:100] if name else self.name

    async def compile(self, dirs: CompileDirs, out: BuildOutput) -> None:
        env_dir = self.env_dir
        await asyncio.to_thread(self._prepare, dirs)
        argv = [
            "/bin/sh",
            "-c",
            WITH_EXPORTS,
            "sh",
            str(len(self.exports)),
            *map(str, self.exports),
            str(self.directory / "bin" / "compile"),
            str(dirs.build_dir),
            str(dirs.cache_dir),
            str(env_dir),
        ]
        status = await run_step(
            argv,
            cwd=dirs.build_dir,
            env=self.env(self.directory.parent),
            out=out,
            run_as=self.run_as,
            indent=False,
            jail=self.jail,
        )
        if status != 0:
            raise BuildFailed(
                f"The buildpack {self.name} failed: bin/compile exited with status {status}."
            )
        export = self.directory / "export"
        if export.is_file():
            self.exports.append(export)

    async def release(self, build_dir: Path) -> dict[str, str]:
        if not (self.directory / "bin" / "release").exists():
            return {}
        status, stdout, stderr = await self._script("release", [str(build_dir)], build_dir)
        if status != 0:
            why = last_words(stderr)
            raise BuildFailed(f"The buildpack {self.name} failed: bin/release: {why}")
        return default_process_types(stdout, self.name)

    async def _script(self, script: str, args: list[str], build_dir: Path) -> tuple[int, str, str]:
        path = self.directory / "bin" / script
        runnable = self.run_as.may_execute(path) if self.run_as else os.access(path, os.X_OK)
        if not runnable:
            raise BuildFailed(f"{self.name}: bin/{script} is not executable.")
        await asyncio.to_thread(self._hand_over, build_dir)
        try:
            return await query(
                [str(path), *args],
                env=self.env(self.directory.parent),
                timeout=DETECT_TIMEOUT,
                cwd=build_dir,
                run_as=self.run_as,
                jail=self.jail,
            )
        except OSError as exc:
            raise BuildFailed(f"{self.name}: bin/{script} could not run: {exc.strerror}") from None

    def _hand_over(self, build_dir: Path) -> None:
        """The build user's scripts read (detect) the app from the start."""
        if self.run_as is not None and not self.run_as.owns(build_dir):
            self.run_as.hand_over(build_dir)

    def _prepare(self, dirs: CompileDirs) -> None:
        """The cache exists; the config vars are files in ENV_DIR; with a build user, all of
        it is that user's."""
        dirs.cache_dir.mkdir(parents=True, exist_ok=True)
        write_env_dir(self.env_dir, dirs.config_vars, self.run_as)
        if self.run_as is not None:
            hand_over(self.run_as, dirs.build_dir, dirs.cache_dir)


def _fetch_directory(path: Path, run_as: RunAs | None) -> None:
    """The directory buildpacks are fetched into, made once per build: their scripts' HOME,
    with a git config (written before the build user owns the directory) that lets their git
    read a local repository another user owns. Fetching does not use it: the build can write
    here."""
    if path.exists():
        return
    path.mkdir(mode=0o700, parents=True)
    config = path / GITCONFIG
    config.write_text("[safe]\n\tdirectory = *\n", encoding="utf-8")
    config.chmod(0o644)  # whatever the platform's umask: the build user's git reads it
    _own_directory(path, run_as)


def _fetch_git_config(platform_dir: Path) -> Path:
    """The fetch's git config, in `platform_dir` (the platform's, passable: 0711), readable
    by the build user and written by nobody else."""
    platform_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
    platform_dir.chmod(0o711)
    config = platform_dir / FETCH_GITCONFIG
    if not config.is_file() or config.is_symlink():
        config.unlink(missing_ok=True)
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(fd, 0o644)
            file.write(FETCH_GIT_CONFIG)
    return config


def _local_repository(url: str) -> Path | None:
    """The directory a `file://` URL names (shown to the fetch in the jail); None for others."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    path = unquote(parts.path)
    return Path(path) if path.startswith("/") else None


def _make_directory(path: Path, run_as: RunAs | None) -> None:
    """Make `path`, which must not exist (nor be a link), the build user's to write in."""
    path.mkdir(mode=0o700)
    if run_as is not None:
        os.lchown(path, run_as.uid, run_as.gid)


def _own_directory(path: Path, run_as: RunAs | None) -> None:
    """`path` exists and, with a build user, is that user's to write in."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if run_as is not None and not run_as.owns(path):
        os.lchown(path, run_as.uid, run_as.gid)


def write_env_dir(env_dir: Path, config_vars: Mapping[str, str], owner: RunAs | None) -> None:
    """One file per config var, named by its key, holding its value (private: secrets), given
    to `owner`. `env_dir`'s parent is the platform's (made here, 0711), so nothing can be put
    in the way; the files are written relative to the directory itself, never through a link."""
    env_dir.parent.mkdir(mode=0o711, exist_ok=True)
    env_dir.mkdir(mode=0o700)
    dir_fd = os.open(env_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for key, value in config_vars.items():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(key, flags, 0o600, dir_fd=dir_fd)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                if owner is not None:
                    os.fchown(fd, owner.uid, owner.gid)
                file.write(value)
        if owner is not None:
            os.fchown(dir_fd, owner.uid, owner.gid)
    finally:
        os.close(dir_fd)


def default_process_types(text: str, name: str) -> dict[str, str]:
    """`default_process_types` from bin/release's YAML; an unreadable answer is a failure."""
    try:
        document: Any = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError:
        raise BuildFailed(f"The buildpack {name} failed: bin/release did not print YAML.") from None
    types = (document or {}).get("default_process_types") if isinstance(document, dict) else None
    if types is None:
        return {}
    invalid = BuildFailed(
        f"The buildpack {name} failed: default_process_types must map process type names "
        "to one-line commands."
    )
    if not isinstance(types, dict):
        raise invalid
    lines = []
    for key, command in types.items():
        if not isinstance(key, str) or not isinstance(command, str) or "\n" in command:
            raise invalid
        lines.append(f"{key}: {command}")
    try:
        return parse_procfile("\n".join(lines))  # the names and commands a Procfile allows
    except ProcfileError:
        raise invalid from None
