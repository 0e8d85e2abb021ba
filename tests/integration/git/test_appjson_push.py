"""app.json on an app's first `git push`: config vars, add-ons (on a real PostgreSQL),
formation and the postdeploy script (in a one-off dyno of a real agent); ignored afterwards,
and a push with a bad app.json is refused with nothing made."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select
from tests.conftest import free_port
from tests.integration.git.pushkit import Api, Pusher, SettleRelease
from tests.integration.git.test_git_push import push
from tests.integration.runtime.test_runtime_agent_process import AgentProcess

from kapal.addons.postgres import PostgresProvisioner
from kapal.services.addons import create_addon
from kapal.services.auth import authenticate
from kapal.services.config import update_config
from kapal.store.models import Addon, Attachment, Build, Dyno, Formation

pytestmark = pytest.mark.timeout(240)

WEB = "web: python -m http.server $PORT --bind 127.0.0.1\n"


@pytest.fixture(autouse=True)
def platform(api: Api, admin_url: str) -> Iterator[Api]:
    """The API with add-ons on the test PostgreSQL and a rendezvous port of its own; the
    add-ons a test leaves are deprovisioned afterwards."""
    api.ctx.settings = dataclasses.replace(
        api.ctx.settings,
        postgres_admin_url=admin_url,
        rendezvous_port=free_port(),
        logs_port=free_port(),
    )
    yield api
    with api.ctx.store.session() as s:
        names = list(s.scalars(select(Addon.name)))
    for name in names:
        PostgresProvisioner(admin_url).deprovision(name)


def files(app_json: dict[str, Any] | str, procfile: str = WEB) -> dict[str, str]:
    text = app_json if isinstance(app_json, str) else json.dumps(app_json, indent=2)
    return {"requirements.txt": "", "Procfile": procfile, "app.json": text}


def config(pusher: Pusher) -> dict[str, str]:
    """The config of the newest release."""
    return dict(pusher.releases()[-1].config)


def formation(pusher: Pusher) -> dict[str, tuple[int, str]]:
    with pusher.api.ctx.store.session() as s:
        rows = s.scalars(select(Formation).where(Formation.app_id == pusher.app.id))
        return {f.type: (f.quantity, f.size) for f in rows}


def addons(pusher: Pusher) -> list[tuple[str, list[str]]]:
    with pusher.api.ctx.store.session() as s:
        rows = list(s.scalars(select(Addon).where(Addon.app_id == pusher.app.id)))
        return [
            (
                row.service,
                list(s.scalars(select(Attachment.name).where(Attachment.addon_id == row.id))),
            )
            for row in rows
        ]


def set_config(pusher: Pusher, **values: str) -> None:
    owner = authenticate(pusher.api.ctx, pusher.token)
    update_config(pusher.api.ctx, owner, pusher.app.name, dict(values))


def assert_refused(pusher: Pusher, repo: Path, status: int, output: str) -> None:
    """Rejected after the build, and nothing of app.json was made."""
    assert status != 0, output
    assert "remote:  !     Push rejected, app.json could not be applied." in output
    assert " ! [remote rejected] main -> main (pre-receive hook declined)" in output
    assert pusher.remote_ref(repo) == ""
    assert [r.version for r in pusher.releases()] == [1, 2]
    assert addons(pusher) == []
    assert "Launching..." not in output
    with pusher.api.ctx.store.session() as s:
        assert s.scalars(select(Build.status)).all() == ["failed"]  # the push was refused


def test_first_push_sets_config_vars_and_formation(pusher: Pusher) -> None:
    set_config(pusher, ALREADY="mine")
    repo = pusher.checkout(
        files=files(
            {
                "name": "Small Sharp Tool",
                "env": {
                    "SECRET_KEY": {"description": "Signs cookies.", "generator": "secret"},
                    "GREETING": "hello",
                    "ALREADY": {"value": "from app.json"},
                    "OPTIONAL": {"description": "Only if you like.", "required": False},
                },
                "formation": {"web": {"quantity": 2, "size": "standard-1x"}},
            }
        )
    )

    status, output = push(pusher, repo)

    assert status == 0, output
    lines = output.splitlines()
    start = lines.index("remote: -----> Applying app.json (first deploy)")
    assert lines[start + 1 : start + 5] == [
        "remote:        Set config vars SECRET_KEY (generated), GREETING",
        "remote:        Kept config vars already set: ALREADY",
        "remote:        Scaled to web@2:Standard-1X",
        "remote: -----> Launching...",
    ]
    assert "remote:        Released v4" in lines
    deployed = config(pusher)
    assert deployed["GREETING"] == "hello"
    assert deployed["ALREADY"] == "mine"
    assert "OPTIONAL" not in deployed
    assert re.fullmatch(r"[0-9a-f]{64}", deployed["SECRET_KEY"])
    assert deployed["SECRET_KEY"] not in output
    assert pusher.releases()[-1].description.startswith("Deploy ")
    assert formation(pusher) == {"web": (2, "standard-1x")}


def test_later_pushes_ignore_app_json(pusher: Pusher) -> None:
    repo = pusher.checkout(files=files({"env": {"SECRET_KEY": {"generator": "secret"}}}))
    status, output = push(pusher, repo)
    assert status == 0, output
    first = config(pusher)

    (repo / "app.json").write_text(
        json.dumps(
            {
                "env": {"SECRET_KEY": {"generator": "secret"}, "NEW": "x", "MUST": {}},
                "formation": {"web": {"quantity": 3}},
                "addons": ["kapal-postgresql"],
            }
        )
    )
    pusher.git("commit", "-qam", "change app.json", cwd=repo)
    status, output = push(pusher, repo)
    assert status == 0, output
    assert "app.json" not in output
    assert config(pusher) == first
    assert formation(pusher) == {"web": (1, "eco")}
    assert addons(pusher) == []

    (repo / "app.json").write_text("{ not json")
    pusher.git("commit", "-qam", "break app.json", cwd=repo)
    status, output = push(pusher, repo)
    assert status == 0, output
    assert [r.version for r in pusher.releases()] == [1, 2, 3, 4, 5]


def test_a_required_var_that_is_not_set_refuses_the_first_push(pusher: Pusher) -> None:
    repo = pusher.checkout(
        files=files(
            {
                "env": {
                    "GREETING": "hello",
                    "API_TOKEN": {"description": "From the provider.", "required": True},
                },
                "addons": ["kapal-postgresql"],
                "formation": {"web": {"quantity": 2}},
            }
        )
    )

    status, output = push(pusher, repo)

    assert_refused(pusher, repo, status, output)
    assert (
        "remote:  !     app.json requires the config var API_TOKEN, which is not set and has no "
        "value in app.json. Set it with `kapal config:set API_TOKEN=...` and push again."
    ) in output.splitlines()
    assert formation(pusher) == {}

    # Set as the message says, the next push is the first deploy and applies app.json.
    set_config(pusher, API_TOKEN="t0ken")
    status, output = push(pusher, repo)
    assert status == 0, output
    assert "remote:        Set config vars GREETING" in output.splitlines()
    assert "t0ken" not in output
    assert config(pusher)["API_TOKEN"] == "t0ken"
    assert [name for _, name in addons(pusher)] == [["DATABASE"]]


@pytest.mark.parametrize(
    ("app_json", "message"),
    [
        ('{"env": {"A": "1",}}', "app.json is not valid JSON: Expecting property name enclosed"),
        ("[]", "app.json: the top level must be a JSON object, not an array."),
        ({"env": {"WORKERS": 4}}, "app.json env.WORKERS: expected an object, got a number."),
        (
            {"env": {"A": "1"}, "addons": ["kapal-postgresql", "heroku-mongodb"]},
            "app.json addons[1]: Couldn't find add-on service 'heroku-mongodb'.",
        ),
        (
            {"formation": {"worker": {"quantity": 1}}},
            "app.json formation.worker: the app has no worker process type (it declares: web).",
        ),
        (
            {"formation": {"web": {"size": "galactic"}}},
            "app.json formation.web.size: Unknown dyno size 'galactic'.",
        ),
    ],
)
def test_a_bad_app_json_refuses_the_first_push(
    pusher: Pusher, app_json: dict[str, Any] | str, message: str
) -> None:
    repo = pusher.checkout(files=files(app_json))
    status, output = push(pusher, repo)
    assert_refused(pusher, repo, status, output)
    assert f"remote:  !     {message}" in output
    assert "A" not in config(pusher)


def test_addons_are_provisioned_before_the_first_release(pusher: Pusher) -> None:
    repo = pusher.checkout(
        files=files(
            {
                "env": {"GREETING": "hello"},
                "addons": [
                    "kapal-postgresql",
                    {"plan": "heroku-postgresql:essential-1", "as": "ANALYTICS"},
                ],
            }
        )
    )

    status, output = push(pusher, repo)

    assert status == 0, output
    lines = output.splitlines()
    start = lines.index("remote: -----> Applying app.json (first deploy)")
    assert lines[start + 1 : start + 4] == [
        "remote:        Created kapal-postgresql as DATABASE_URL",
        "remote:        Created heroku-postgresql as ANALYTICS_URL",
        "remote:        Set config vars GREETING",
    ]
    releases = pusher.releases()
    assert [r.description.split(" (")[0] for r in releases[2:]] == [
        "Attach DATABASE",
        "Attach ANALYTICS",
        f"Deploy {pusher.git('rev-parse', 'HEAD', cwd=repo).stdout[:8]}",
    ]
    first_release = releases[-1].config
    assert set(first_release) == {"DATABASE_URL", "ANALYTICS_URL", "GREETING"}
    assert first_release["DATABASE_URL"] not in output
    with psycopg.connect(first_release["DATABASE_URL"], connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert addons(pusher) == [
        ("kapal-postgresql", ["DATABASE"]),
        ("heroku-postgresql", ["ANALYTICS"]),
    ]


def test_an_addon_the_app_already_has_is_kept(pusher: Pusher) -> None:
    owner = authenticate(pusher.api.ctx, pusher.token)
    create_addon(pusher.api.ctx, owner, pusher.app.name, "heroku-postgresql")
    repo = pusher.checkout(files=files({"addons": ["kapal-postgresql"]}))
    status, output = push(pusher, repo)
    assert status == 0, output
    assert "remote:        Kept kapal-postgresql already attached as DATABASE_URL" in output
    assert addons(pusher) == [("heroku-postgresql", ["DATABASE"])]


def test_a_failed_release_phase_takes_back_what_app_json_made(
    pusher: Pusher, settle_release: SettleRelease, admin_url: str
) -> None:
    repo = pusher.checkout(
        files=files(
            {
                "env": {"SECRET_KEY": {"generator": "secret"}},
                "addons": ["kapal-postgresql"],
                "formation": {"web": {"quantity": 3, "size": "standard-2x"}},
            },
            procfile="release: ./migrate\n" + WEB,
        )
    )
    with pusher.api.ctx.store.session() as s:
        before = set(s.scalars(select(Addon.name)))
    agent = settle_release(pusher.app, "failed", "migrate: no such table\n")

    status, output = push(pusher, repo)
    agent.join(10)

    assert status != 0, output
    lines = output.splitlines()
    failed = lines.index("remote:  !     Release command failed; v4 was not deployed.")
    assert lines[failed + 1].startswith("remote:        Removed postgresql-")
    assert lines[failed + 1].endswith(", made for this deploy")
    assert pusher.remote_ref(repo) == ""
    assert [(r.version, r.description.split(" ")[0], r.status) for r in pusher.releases()] == [
        (1, "Initial", "succeeded"),
        (2, "Enable", "succeeded"),
        (3, "Attach", "succeeded"),
        (4, "Deploy", "failed"),
        (5, "Detach", "succeeded"),
    ]
    assert config(pusher) == {}  # the live config: no DATABASE_URL, no SECRET_KEY
    assert addons(pusher) == []
    removed = lines[failed + 1].split()[2].rstrip(",")
    assert removed not in before
    with psycopg.connect(admin_url) as conn:
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (removed,)).fetchone()
    assert role is None
    assert formation(pusher) == {"web": (1, "eco")}


def test_postdeploy_without_an_agent_is_reported_and_the_deploy_stays(pusher: Pusher) -> None:
    repo = pusher.checkout(files=files({"scripts": {"postdeploy": "echo seeding"}}))
    status, output = push(pusher, repo)
    assert status == 0, output
    lines = output.splitlines()
    assert "remote: -----> Running postdeploy: echo seeding" in lines
    assert any(
        line.startswith("remote:  !     Postdeploy script failed: Kapal's agent is not reachable")
        for line in lines
    ), output


class Agent(AgentProcess):
    """The real agent process (`python -m kapal.entrypoints.agent`) on the API's data."""

    def __init__(self, api: Api, log: Path) -> None:
        settings = api.ctx.settings
        env = {
            "PATH": os.environ["PATH"],
            "KAPAL_DATA_DIR": str(settings.data_dir),
            "KAPAL_DATABASE_URL": settings.database_url,
            "KAPAL_LOGS_PORT": str(settings.logs_port),
            "KAPAL_RENDEZVOUS_PORT": str(settings.rendezvous_port),
            "KAPAL_STOP_GRACE": "5",
            "KAPAL_BOOT_TIMEOUT": "30",
        }
        super().__init__(settings, env, log)
        try:
            self.wait_for(lambda: self._listening(settings.rendezvous_port), "rendezvous port")
        except AssertionError:
            self.stop()
            raise

    @staticmethod
    def _listening(port: int) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def agent(platform: Api, tmp_path: Path) -> Iterator[Agent]:
    running = Agent(platform, tmp_path / "agent.log")
    try:
        yield running
    finally:
        running.stop()


def test_postdeploy_runs_once_in_a_one_off_dyno_after_the_first_deploy(
    pusher: Pusher, agent: Agent
) -> None:
    script = 'echo seeding with $GREETING; echo a warning >&2; test -n "$DYNO"'
    repo = pusher.checkout(
        files=files({"env": {"GREETING": "hello"}, "scripts": {"postdeploy": script}})
    )

    status, output = push(pusher, repo)

    assert status == 0, f"{output}\nagent:\n{agent.output()}"
    lines = output.splitlines()
    start = lines.index(f"remote: -----> Running postdeploy: {script}")
    assert lines.index("remote:        Released v3") < start
    assert lines[start + 1 : start + 4] == [
        "remote:        seeding with hello",
        "remote:        a warning",
        "remote:        Postdeploy script succeeded.",
    ], f"{output}\nagent:\n{agent.output()}"
    with pusher.api.ctx.store.session() as s:
        assert list(s.scalars(select(Dyno.name).where(Dyno.type == "run"))) == []

    (repo / "seed.txt").write_text("again\n")
    pusher.git("add", "-A", cwd=repo)
    pusher.git("commit", "-qm", "second deploy", cwd=repo)
    status, output = push(pusher, repo)
    assert status == 0, output
    assert "postdeploy" not in output


def test_a_failing_postdeploy_is_reported_and_the_deploy_stays(
    pusher: Pusher, agent: Agent
) -> None:
    repo = pusher.checkout(
        files=files({"scripts": {"postdeploy": {"command": "echo half-way; exit 3"}}})
    )

    status, output = push(pusher, repo)

    assert status == 0, f"{output}\nagent:\n{agent.output()}"
    lines = output.splitlines()
    start = lines.index("remote: -----> Running postdeploy: echo half-way; exit 3")
    assert lines[start + 1 : start + 3] == [
        "remote:        half-way",
        "remote:  !     Postdeploy script failed: it exited with status 3. The deploy stays; "
        "the script does not run again.",
    ], f"{output}\nagent:\n{agent.output()}"
    assert pusher.releases()[-1].status == "succeeded"
    assert pusher.remote_ref(repo) != ""
