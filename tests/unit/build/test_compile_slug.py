"""The slug compiler with a stand-in buildpack: detection, Procfile, output, failures."""

from __future__ import annotations

import asyncio
import tarfile
from pathlib import Path

import pytest

from kapal.build.buildpack import CompileDirs
from kapal.build.compiler import compile_slug
from kapal.build.output import BuildOutput
from kapal.build.process import BuildFailed
from kapal.build.slugs import SlugStore


class ToyBuildpack:
    """Detects toy.txt; compiling writes a file, or waits forever when asked to."""

    name = "toy"
    declares_defaults = True

    def __init__(self, hang: bool = False, defaults: dict[str, str] | None = None) -> None:
        self.hang = hang
        self.defaults = defaults or {}

    async def fetch(self) -> None:
        pass

    async def detect(self, build_dir: Path) -> str | None:
        return "Toy" if (build_dir / "toy.txt").is_file() else None

    async def release(self, build_dir: Path) -> dict[str, str]:
        return self.defaults

    async def compile(self, dirs: CompileDirs, out: BuildOutput) -> None:
        out.step("Compiling toys")
        if self.hang:
            await asyncio.Event().wait()
        (dirs.build_dir / "compiled.txt").write_text("built")


def source(tmp_path: Path, files: dict[str, str], top: str = "") -> Path:
    src = tmp_path / "src"
    for name, text in files.items():
        path = src / top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    tarball = tmp_path / "source.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for path in sorted(src.iterdir()):
            tar.add(path, arcname=path.name)
    return tarball


def run(tmp_path: Path, tarball: Path, bp: ToyBuildpack, timeout: float = 60) -> tuple[object, str]:
    out = BuildOutput(tmp_path / "build.log")
    dirs = CompileDirs(tmp_path / "build", tmp_path / "cache")
    store = SlugStore(tmp_path / "slugs", 10_000_000)
    try:
        result: object = asyncio.run(compile_slug(tarball, dirs, out, [bp], store, timeout))
    except BuildFailed as exc:
        result = exc
    out.close()
    return result, (tmp_path / "build.log").read_text()


def test_a_detected_app_becomes_a_slug(tmp_path: Path) -> None:
    tarball = source(tmp_path, {"toy.txt": "", "Procfile": "web: toy serve\nworker: toy work\n"})
    result, log = run(tmp_path, tarball, ToyBuildpack())
    assert not isinstance(result, BuildFailed), log
    assert result.process_types == {"web": "toy serve", "worker": "toy work"}  # type: ignore[attr-defined]
    assert log.splitlines()[:4] == [
        "-----> Toy app detected",
        "-----> Compiling toys",
        "-----> Discovering process types",
        "       Procfile declares types -> web, worker",
    ]
    assert "-----> Compressing..." in log and "       Done: " in log
    slugs = list((tmp_path / "slugs").iterdir())
    with tarfile.open(slugs[0]) as tar:
        assert sorted(tar.getnames()) == ["Procfile", "compiled.txt", "toy.txt"]


def test_one_top_level_directory_is_the_app_root(tmp_path: Path) -> None:
    tarball = source(tmp_path, {"toy.txt": "", "Procfile": "web: toy\n"}, top="myapp-1.0")
    result, log = run(tmp_path, tarball, ToyBuildpack())
    assert not isinstance(result, BuildFailed), log


def test_no_language_detected(tmp_path: Path) -> None:
    result, log = run(tmp_path, source(tmp_path, {"README": "hi"}), ToyBuildpack())
    assert isinstance(result, BuildFailed)
    assert log.splitlines()[0] == " !     No default language could be detected for this app."
    assert "Push rejected" not in log


def test_procfile_problems_fail_before_compiling(tmp_path: Path) -> None:
    tarball = source(tmp_path, {"toy.txt": "", "Procfile": "web toy serve\n"})
    result, log = run(tmp_path, tarball, ToyBuildpack())
    assert isinstance(result, BuildFailed)
    assert "Compiling toys" not in log
    assert log.splitlines()[-2:] == [
        " !     Procfile line 1: expected \"<process type>: <command>\", got 'web toy serve'",
        " !     Push rejected, failed to compile Toy app.",
    ]
    assert not (tmp_path / "slugs").exists()


def test_compile_time_is_limited(tmp_path: Path) -> None:
    tarball = source(tmp_path, {"toy.txt": "", "Procfile": "web: toy\n"})
    result, log = run(tmp_path, tarball, ToyBuildpack(hang=True), timeout=0.2)
    assert isinstance(result, BuildFailed)
    assert " !     Compiling the app took longer than the 0.2 second limit." in log
    assert log.splitlines()[-1] == " !     Push rejected, failed to compile Toy app."


def test_a_source_escaping_its_directory_is_refused(tmp_path: Path) -> None:
    tarball = tmp_path / "evil.tar.gz"
    payload = tmp_path / "payload"
    payload.write_text("x")
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(payload, arcname="../escaped.txt")
    result, log = run(tmp_path, tarball, ToyBuildpack())
    assert isinstance(result, BuildFailed)
    assert " !     Refusing to unpack the source: '../escaped.txt' is outside" in log
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize("top", ["", "app"])
def test_extracted_files_keep_their_content(tmp_path: Path, top: str) -> None:
    tarball = source(tmp_path, {"toy.txt": "", "Procfile": "web: x\n", "app/app": "nested"}, top)
    result, log = run(tmp_path, tarball, ToyBuildpack())
    assert not isinstance(result, BuildFailed), log
    assert (tmp_path / "build" / "app" / "app").read_text() == "nested"


def test_without_a_procfile_the_buildpacks_default_types_are_used(tmp_path: Path) -> None:
    tarball = source(tmp_path, {"toy.txt": ""})
    result, log = run(tmp_path, tarball, ToyBuildpack(defaults={"web": "toy serve"}))
    assert not isinstance(result, BuildFailed), log
    assert result.process_types == {"web": "toy serve"}  # type: ignore[attr-defined]
    assert "       Default types for buildpack -> web" in log.splitlines()


def test_the_procfile_overrides_default_types(tmp_path: Path) -> None:
    tarball = source(tmp_path, {"toy.txt": "", "Procfile": "web: mine\n"})
    toy = ToyBuildpack(defaults={"web": "toy serve", "worker": "toy work"})
    result, log = run(tmp_path, tarball, toy)
    assert not isinstance(result, BuildFailed), log
    assert result.process_types == {"web": "mine", "worker": "toy work"}  # type: ignore[attr-defined]


def test_no_procfile_and_no_default_types_fails_the_build(tmp_path: Path) -> None:
    result, log = run(tmp_path, source(tmp_path, {"toy.txt": ""}), ToyBuildpack())
    assert isinstance(result, BuildFailed)
    assert " !     No Procfile found in the root of the app." in log.splitlines()
    assert log.splitlines()[-1] == " !     Push rejected, failed to compile Toy app."


def test_a_missing_procfile_fails_before_compiling_without_default_types(tmp_path: Path) -> None:
    toy = ToyBuildpack()
    toy.declares_defaults = False
    result, log = run(tmp_path, source(tmp_path, {"toy.txt": ""}), toy)
    assert isinstance(result, BuildFailed)
    assert "Compiling toys" not in log
    assert " !     No Procfile found in the root of the app." in log.splitlines()
