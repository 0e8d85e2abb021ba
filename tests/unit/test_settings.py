from __future__ import annotations

import os
from pathlib import Path

import pytest

from kapal.settings import Settings, parse_size, python_roots


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2G", 2 * 1024**3),
        ("512M", 512 * 1024**2),
        ("300k", 300 * 1024),
        ("1000", 1000),
        ("1GB", 1024**3),
    ],
)
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "-1G", "1.5G", "0", "2T", "lots"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_build_limits_from_the_environment(tmp_path: Path) -> None:
    env = {
        "KAPAL_DATA_DIR": str(tmp_path),
        "KAPAL_BUILD_MEMORY": "256M",
        "KAPAL_BUILD_TIMEOUT": "60",
        "KAPAL_BUILD_CONCURRENCY": "2",
    }
    settings = Settings.from_env(env)
    assert settings.build_memory == 256 * 1024**2
    assert settings.build_timeout == 60
    assert settings.build_concurrency == 2
    defaults = Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path)})
    assert (defaults.build_memory, defaults.build_timeout) == (2 * 1024**3, 900)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("KAPAL_BUILD_CONCURRENCY", "0", "KAPAL_BUILD_CONCURRENCY must be at least 1, not 0"),
        ("KAPAL_BUILD_TIMEOUT", "-5", "KAPAL_BUILD_TIMEOUT must be at least 1"),
        ("KAPAL_BUILD_TIMEOUT", "nan", "KAPAL_BUILD_TIMEOUT must be at least 1"),
        ("KAPAL_BUILD_MEMORY", "1", "KAPAL_BUILD_MEMORY must be at least 67108864"),
    ],
)
def test_build_limits_that_cannot_work_are_refused(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path), name: value})


def test_where_pyenv_and_uv_keep_their_pythons(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert python_roots({}, home) == (
        home / ".pyenv" / "versions",
        home / ".local" / "share" / "uv" / "python",
    )
    env = {"PYENV_ROOT": "/opt/pyenv", "UV_PYTHON_INSTALL_DIR": "/opt/uv", "XDG_DATA_HOME": "/d"}
    assert python_roots(env, home) == (
        Path("/opt/pyenv/versions"),
        Path("/opt/uv"),
        Path("/d/uv/python"),
    )


def test_dyno_lifetimes_from_the_environment(tmp_path: Path) -> None:
    defaults = Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path)})
    assert (defaults.dyno_cycle, defaults.run_ttl) == (24 * 3600, 24 * 3600)
    env = {"KAPAL_DATA_DIR": str(tmp_path), "KAPAL_DYNO_CYCLE_HOURS": "0.5", "KAPAL_RUN_TTL": "90"}
    settings = Settings.from_env(env)
    assert (settings.dyno_cycle, settings.run_ttl) == (1800, 90)
    never = {"KAPAL_DATA_DIR": str(tmp_path), "KAPAL_DYNO_CYCLE_HOURS": "0", "KAPAL_RUN_TTL": "0"}
    assert (Settings.from_env(never).dyno_cycle, Settings.from_env(never).run_ttl) == (0, 0)


@pytest.mark.parametrize("name", ["KAPAL_DYNO_CYCLE_HOURS", "KAPAL_RUN_TTL"])
def test_negative_lifetimes_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be at least 0"):
        Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path), name: "-1"})


@pytest.mark.parametrize(
    "name",
    ["KAPAL_ROUTER_BOOT_TIMEOUT", "KAPAL_ROUTER_REQUEST_TIMEOUT", "KAPAL_ROUTER_IDLE_TIMEOUT"],
)
@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_router_timeouts_under_a_second_are_refused(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be at least 1"):
        Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path), name: value})


def test_router_idle_timeout_and_name_from_the_environment(tmp_path: Path) -> None:
    defaults = Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path)})
    assert (defaults.router_idle_timeout, defaults.router_name) == (55.0, "")
    env = {
        "KAPAL_DATA_DIR": str(tmp_path),
        "KAPAL_ROUTER_IDLE_TIMEOUT": "120",
        "KAPAL_ROUTER_NAME": "edge-2",
    }
    settings = Settings.from_env(env)
    assert (settings.router_idle_timeout, settings.router_name) == (120.0, "edge-2")
    with pytest.raises(ValueError, match="KAPAL_ROUTER_IDLE_TIMEOUT must be at least 1"):
        Settings.from_env({**env, "KAPAL_ROUTER_IDLE_TIMEOUT": "0"})
    with pytest.raises(ValueError, match="KAPAL_ROUTER_NAME must be at most 24 characters"):
        Settings.from_env({**env, "KAPAL_ROUTER_NAME": "w" * 25})


def test_router_workers_default_to_the_cpus_up_to_four(tmp_path: Path) -> None:
    defaults = Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path)})
    assert defaults.router_workers == min(len(os.sched_getaffinity(0)), 4)
    env = {"KAPAL_DATA_DIR": str(tmp_path), "KAPAL_ROUTER_WORKERS": "3"}
    assert Settings.from_env(env).router_workers == 3


@pytest.mark.parametrize("text", ["0", "-1", "65", "two", "1.5"])
def test_router_workers_outside_1_to_64_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValueError, match="KAPAL_ROUTER_WORKERS must be a number from 1 to 64"):
        Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path), "KAPAL_ROUTER_WORKERS": text})


def test_operators_are_emails_in_lowercase_and_none_by_default(tmp_path: Path) -> None:
    env = {"KAPAL_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(env).operators == ()
    listed = Settings.from_env({**env, "KAPAL_OPERATORS": " Ops@Example.com, ,b@example.com"})
    assert listed.operators == ("ops@example.com", "b@example.com")


def test_mysql_port_from_the_environment(tmp_path: Path) -> None:
    assert Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path)}).mysql_port == 13306
    env = {"KAPAL_DATA_DIR": str(tmp_path), "KAPAL_MYSQL_PORT": "23306"}
    settings = Settings.from_env(env)
    assert (settings.mysql_port, settings.mysql_dir) == (23306, tmp_path.resolve() / "mysql")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "KAPAL_MYSQL_PORT must be at least 1, not 0"),
        ("65536", "KAPAL_MYSQL_PORT must be a port number"),
        ("mysql", "KAPAL_MYSQL_PORT must be a port number"),
    ],
)
def test_mysql_ports_that_cannot_work_are_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({"KAPAL_DATA_DIR": str(tmp_path), "KAPAL_MYSQL_PORT": text})
