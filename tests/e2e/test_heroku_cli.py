"""The official Heroku CLI (npm `heroku`, installed by `make test` into tests/heroku-cli) through
Heroku's Getting Started tutorial against a running Kapal: login, create, git push over the
HTTPS remote the CLI adds, scale, logs, config, releases, rollback, run, Postgres (pg:psql and
pg:info), Redis (redis:info, redis:maxmemory), maintenance, domains, destroy. A network guard
preloaded into every node process the CLI starts records each connection and refuses any host
but localhost, so nothing may leave this machine."""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kapal_server import KapalServer, User, new_user, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HEROKU_BIN = ROOT / "tests" / "heroku-cli" / "node_modules" / ".bin"
HEROKU = HEROKU_BIN / "heroku"
GUARD = Path(__file__).resolve().with_name("heroku_net_guard.cjs")
LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}
SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"  # Debian's (package ca-certificates)
EMAIL = "hana@example.com"
PASSWORD = "correct horse 7"
TIMEOUT = 120
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def parse_heroku_env(text: str) -> tuple[dict[str, str], list[list[str]]]:
    """`kapal heroku-env`'s output: the `export K=V` lines as a dict, other commands as argvs."""
    exports: dict[str, str] = {}
    commands: list[list[str]] = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] == "export":
            for word in words[1:]:
                key, _, value = word.partition("=")
                exports[key] = value
        else:
            commands.append(words)
    return exports, commands


@dataclass
class HerokuShell:
    """A user's shell with the official Heroku CLI on PATH, its own HOME, and the guard log."""

    server: KapalServer
    home: Path
    env: dict[str, str]
    guard_log: Path
    _guard_seen: int = 0

    def __call__(
        self,
        *args: str,
        cwd: Path | None = None,
        expect: int = 0,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `heroku ARGS`; check its exit code and that it connected only to localhost."""
        started = time.monotonic()
        result = subprocess.run(
            [str(HEROKU), *args],
            cwd=cwd or self.home,
            env={**self.env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        took = time.monotonic() - started
        self.note(f"heroku {shlex.join(args)}  ({took:.1f}s, exit {result.returncode})", result)
        assert result.returncode == expect, (
            f"heroku {shlex.join(args)} exited {result.returncode}, expected {expect}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        self.check_guard(f"heroku {shlex.join(args)}")
        return result

    def git(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """git in this shell: `heroku git:credentials` (on PATH) answers its password prompts."""
        result = subprocess.run(
            ["git", *args], cwd=cwd, env=self.env, capture_output=True, text=True, timeout=600
        )
        self.note(f"git {shlex.join(args)}  (exit {result.returncode})", result)
        assert result.returncode == 0, (
            f"git {shlex.join(args)} exited {result.returncode}\n{result.stdout}{result.stderr}"
        )
        self.check_guard(f"git {shlex.join(args)}")
        return result

    def note(self, what: str, result: subprocess.CompletedProcess[str]) -> None:
        # Printed, so a failing test shows every command's output up to the failure.
        print(f"$ {what}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}")

    def login(self, email: str, password: str) -> str:
        """`heroku login -i` through a pty: its prompts need a terminal."""
        master, slave = os.openpty()
        process = subprocess.Popen(
            [str(HEROKU), "login", "-i"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=self.home,
            env={**self.env, "TERM": "xterm"},
            start_new_session=True,
        )
        os.close(slave)
        screen = ""

        def expect(text: str) -> None:
            nonlocal screen
            deadline = time.monotonic() + 60
            while text not in screen:
                remaining = deadline - time.monotonic()
                ready, _, _ = select.select([master], [], [], max(remaining, 0))
                if not ready:
                    raise AssertionError(f"no {text!r} from heroku login -i:\n{screen}")
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the terminal's other end closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"heroku login -i ended before {text!r}:\n{screen}")
                screen += ANSI.sub("", chunk.decode(errors="replace"))

        try:
            expect("Email")
            os.write(master, email.encode() + b"\r")
            expect("Password")
            os.write(master, password.encode() + b"\r")
            expect(f"Logged in as {email}")
            assert process.wait(TIMEOUT) == 0, screen
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(master)
        print(f"$ heroku login -i\n{screen}")
        self.check_guard("heroku login -i")
        return screen

    def guard_entries(self) -> list[dict[str, Any]]:
        if not self.guard_log.exists():
            return []
        return [json.loads(line) for line in self.guard_log.read_text().splitlines()]

    def check_guard(self, what: str) -> None:
        entries = self.guard_entries()
        new, self._guard_seen = entries[self._guard_seen :], len(entries)
        leaks = [e for e in new if e["host"] not in LOCAL_HOSTS or not e["allowed"]]
        assert not leaks, f"{what} tried to reach hosts other than localhost: {leaks}"


def heroku_shell(server: KapalServer, kapal_user: User, name: str) -> HerokuShell:
    """A fresh HOME with the environment `kapal heroku-env` prints (and its git config line),
    in a shell that, like many, names the system's CAs for git and Node already."""
    inherited = {"GIT_SSL_CAINFO": SYSTEM_CAS, "NODE_EXTRA_CA_CERTS": SYSTEM_CAS}
    printed = kapal_user.kapal("heroku-env", env=inherited).stdout
    exports, commands = parse_heroku_env(printed)
    assert exports["HEROKU_HOST"] == server.api_url, printed
    assert exports["HEROKU_GIT_HOST"] == f"localhost:{server.ports['api_tls']}", printed
    assert "HEROKU_API_KEY" not in exports, printed
    home = server.root / "home" / name
    home.mkdir(parents=True)
    guard_log = home.parent / f"{name}-net-guard.jsonl"
    # GIT_SSL_CAINFO, which overrides git's per-URL setting, now names a bundle with Kapal's CA.
    assert exports["GIT_SSL_CAINFO"] != SYSTEM_CAS, printed
    env = {
        **inherited,
        **exports,
        "PATH": f"{HEROKU_BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "COLUMNS": "200",  # no wrapped warnings or truncated tables
        "NODE_OPTIONS": f'--require "{GUARD}"',
        "HEROKU_NET_GUARD_LOG": str(guard_log),
        "GIT_AUTHOR_NAME": "Hana User",
        "GIT_AUTHOR_EMAIL": EMAIL,
        "GIT_COMMITTER_NAME": "Hana User",
        "GIT_COMMITTER_EMAIL": EMAIL,
        "GIT_TERMINAL_PROMPT": "0",
    }
    assert commands and all(argv[:3] == ["git", "config", "--global"] for argv in commands)
    for argv in commands:
        subprocess.run(argv, env=env, check=True, timeout=30)
    return HerokuShell(server, home, env, guard_log)


class LogTail:
    """`heroku logs --tail` in the background, its stdout collected line by line."""

    def __init__(self, shell: HerokuShell, app: str) -> None:
        self.process = subprocess.Popen(
            [str(HEROKU), "logs", "--tail", "-a", app],
            cwd=shell.home,
            env=shell.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def stop(self) -> str:
        """Stop it (it never ends by itself) and return its stderr."""
        self.process.terminate()
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)
        assert self.process.stdout is not None and self.process.stderr is not None
        stderr = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        return stderr


@pytest.fixture(scope="module")
def hana(kapal_server: KapalServer) -> User:
    """Signed up with Kapal's own CLI; the Heroku CLI then logs in with the same password."""
    user = new_user(kapal_server, "hana")
    user.kapal("signup", "--email", EMAIL, input=f"{PASSWORD}\n")
    return user


def test_heroku_cli_tutorial(kapal_server: KapalServer, hana: User) -> None:
    assert HEROKU.exists(), f"{HEROKU} is missing: run `make heroku-cli`"
    heroku = heroku_shell(kapal_server, hana, "hana-heroku")
    api_tls = kapal_server.ports["api_tls"]
    router = kapal_server.ports["router"]

    # Log in, as the tutorial does, with the password prompt.
    assert heroku("auth:whoami", expect=100).stderr.count("not logged in") == 1
    heroku.login(EMAIL, PASSWORD)
    assert heroku("auth:whoami").stdout == f"{EMAIL}\n"
    netrc = (heroku.home / ".netrc").read_text()
    assert f"machine localhost:{kapal_server.ports['api']}" in netrc

    # Create the app from inside the sample's repository: the CLI adds the `heroku` remote.
    repo = User(kapal_server, heroku.home).checkout("flask-hello")
    created = heroku("apps:create", cwd=repo)
    match = re.search(r"Creating app\.\.\. done, (?:⬢ )?([a-z][a-z0-9-]+)$", created.stderr, re.M)
    assert match, created.stderr
    app = match.group(1)
    web_url = f"http://{app}.localhost:{router}/"
    git_url = f"https://localhost:{api_tls}/{app}.git"
    assert created.stdout == f"{web_url} | {git_url}\n"
    remote = heroku.git("remote", "get-url", "heroku", cwd=repo).stdout
    assert remote == f"{git_url}\n"

    # git push over HTTPS: git asks `heroku git:credentials` for the token.
    push = heroku.git("push", "heroku", "main", cwd=repo)
    for expected in (
        "remote: -----> Python app detected",
        "Procfile declares types -> web",
        "remote: -----> Launching...",
        "Released v3",
        f"{web_url} deployed to Kapal",
        "* [new branch]      main -> main",
    ):
        assert expected in push.stderr, push.stderr

    scaled = heroku("ps:scale", "web=1", cwd=repo)
    assert scaled.stderr.strip().endswith("Scaling dynos... done, now running web at 1:Eco")
    page = wait_for(lambda: (r := hana.get(app)).status_code == 200 and r)
    assert page.text == "Hello from Kapal\n"

    ps = heroku("ps", cwd=repo)
    assert re.search(
        r"^Eco dyno hours quota remaining this month: \d+h \d+m \(\d+%\)$", ps.stdout, re.M
    )
    assert re.search(r"^Eco dyno usage for this app: \d+h \d+m \(\d+%\)$", ps.stdout, re.M)
    assert re.search(r"^=== web \(Eco\): gunicorn app:app .*\(1\)$", ps.stdout, re.M), ps.stdout
    assert re.search(
        r"^web\.1: up \d{4}/\d\d/\d\d \d\d:\d\d:\d\d \+0000 \(~ \d+s ago\)$", ps.stdout, re.M
    ), ps.stdout

    apps = heroku("apps")
    # Kapal's region is "local"; the CLI names every region but "us".
    assert apps.stdout == f"=== {EMAIL} Apps\n\n{app} (local)\n", apps.stdout
    info = heroku("apps:info", cwd=repo)
    assert info.stdout.startswith(f"=== {app}\n\n"), info.stdout
    for expected in (
        f"Web URL:        {web_url}",
        f"Owner:          {EMAIL}",
        "Region:         local",
        "Dynos:          web: 1",
    ):
        assert expected in info.stdout, info.stdout
    assert re.search(rf"^Git URL: +\S+/{app}\.git$", info.stdout, re.M), info.stdout
    assert re.search(r"^Repo Size: +\d+ KB$", info.stdout, re.M), info.stdout
    assert re.search(r"^Slug Size: +\d+ (KB|MB)$", info.stdout, re.M), info.stdout

    # Logs: the router's line for our request, in the backlog and then live.
    probe = f"/probe-{uuid.uuid4().hex[:12]}"
    assert hana.get(app, probe).status_code == 404
    wait_for(lambda: f'path="{probe}"' in heroku("logs", "-n", "20", cwd=repo).stdout)
    tail = LogTail(heroku, app)
    try:
        live = f"/live-{uuid.uuid4().hex[:12]}"

        def seen_live() -> bool:
            hana.get(app, live)
            return any(f'path="{live}"' in line for line in tail.lines)

        wait_for(seen_live, timeout=30, interval=1)
        router_line = next(line for line in tail.lines if f'path="{live}"' in line)
        assert re.match(r"^\S+ kapal\[router\]: at=info method=GET ", router_line), router_line
        assert "status=404" in router_line
    finally:
        tail_stderr = tail.stop()
    print(f"$ heroku logs --tail\n--- stdout\n{''.join(tail.lines)}--- stderr\n{tail_stderr}")
    heroku.check_guard("heroku logs --tail")

    # Config vars and releases: each change is a release, printed as `done, vN`.
    set_ = heroku("config:set", "GREETING=Selamat datang", cwd=repo)
    assert set_.stderr.strip().endswith("done, v4"), set_.stderr
    assert "Setting GREETING and restarting" in set_.stderr
    assert set_.stdout == "GREETING: Selamat datang\n"
    assert heroku("config:get", "GREETING", cwd=repo).stdout == "Selamat datang\n"
    assert "GREETING: Selamat datang" in heroku("config", cwd=repo).stdout
    wait_for(lambda: hana.get(app, "/greeting").text == "Selamat datang")
    unset = heroku("config:unset", "GREETING", cwd=repo)
    assert unset.stderr.strip().endswith("done, v5"), unset.stderr
    assert heroku("config:get", "GREETING", cwd=repo).stdout == "\n"

    releases = heroku("releases", cwd=repo)
    assert releases.stdout.startswith(f"=== {app} Releases - Current: v5\n"), releases.stdout
    assert re.search(rf"v5\s+Remove GREETING config vars\s+{EMAIL}", releases.stdout)
    assert re.search(rf"v4\s+Set GREETING config vars\s+{EMAIL}", releases.stdout)
    assert re.search(r"v3\s+Deploy [0-9a-f]{8}", releases.stdout)
    assert re.search(r"v1\s+Initial release", releases.stdout)
    release = heroku("releases:info", "v4", cwd=repo)
    assert release.stdout.startswith("=== Release v4\n"), release.stdout
    assert f"By:                     {EMAIL}" in release.stdout
    assert "Change:                 Set GREETING config vars" in release.stdout
    assert "=== v4 Config vars\n\nGREETING: Selamat datang\n" in release.stdout

    # rollback without an argument: the release before the current one (v4, with GREETING).
    rolled = heroku("rollback", cwd=repo)
    assert f"Rolling back {app} to v4... done, v6" in rolled.stderr, rolled.stderr
    assert "To undo, run: heroku rollback v5" in rolled.stderr
    wait_for(lambda: hana.get(app, "/greeting").text == "Selamat datang")

    # One-off dynos, attached (TLS rendezvous) and detached.
    ran = heroku("run", "echo", "hello", cwd=repo)
    assert ran.stdout == "hello\n", ran.stdout
    assert re.search(rf"Running echo hello on {app}\.\.\. .*up, run\.\d+", ran.stderr)
    failed = heroku("run", "--exit-code", "false", cwd=repo, expect=1)
    assert "Process exited with code 1" in failed.stderr
    detached = heroku("run:detached", "echo", "detached", cwd=repo)
    match = re.search(rf"Running echo detached on {app}\.\.\. done, (run\.\d+)", detached.stderr)
    assert match, detached.stderr
    one_off = match.group(1)
    assert detached.stdout == (
        f"Run heroku logs --app {app} --dyno {one_off} to view the output.\n\n"
    )
    wait_for(
        lambda: f"app[{one_off}]: detached" in heroku("logs", "--dyno", one_off, cwd=repo).stdout
    )

    # PostgreSQL.
    addon = heroku("addons:create", "heroku-postgresql", cwd=repo)
    match = re.search(r"^Created (postgresql-[a-z0-9-]+) as DATABASE_URL$", addon.stdout, re.M)
    assert match, addon.stdout
    database = match.group(1)
    assert f"Creating heroku-postgresql on {app}... free" in addon.stderr
    addons = heroku("addons", cwd=repo)
    assert f"heroku-postgresql ({database})" in addons.stdout, addons.stdout
    assert "└─ as DATABASE" in addons.stdout
    addon_info = heroku("addons:info", "DATABASE", cwd=repo)
    assert addon_info.stdout.startswith(f"=== {database}\n"), addon_info.stdout
    assert "Plan:         heroku-postgresql:essential-0" in addon_info.stdout
    assert f"Attachments:  {app}::DATABASE" in addon_info.stdout
    assert "State:        created" in addon_info.stdout
    psql = heroku("pg:psql", "-c", "select 1+1 as two", cwd=repo)
    assert psql.stdout == " two \n-----\n   2\n(1 row)\n\n", psql.stdout
    assert f"--> Connecting to {database}" in psql.stderr
    # pg:info asks Heroku's data API, which HEROKU_DATA_HOST sends to Kapal.
    pg_info = heroku("pg:info", cwd=repo)
    assert pg_info.stdout.startswith("=== DATABASE_URL\n"), pg_info.stdout
    assert re.search(r"^Status: +Available$", pg_info.stdout, re.M), pg_info.stdout
    assert len(re.findall(rf"^Add-on: +{database}$", pg_info.stdout, re.M)) == 1, pg_info.stdout
    # Redis: Kapal serves the data API paths redis:info and redis:maxmemory read.
    redis = heroku("addons:create", "heroku-redis", cwd=repo)
    assert re.search(r"^Created redis-[a-z0-9-]+ as REDIS_URL$", redis.stdout, re.M), redis.stdout
    redis_info = heroku("redis:info", cwd=repo)
    assert re.search(r"^Status: +available$", redis_info.stdout, re.M), redis_info.stdout
    policy = heroku("redis:maxmemory", "--policy", "allkeys-lru", cwd=repo)
    assert "set to allkeys-lru" in policy.stdout, policy.stdout
    assert re.search(r"^Maxmemory: +allkeys-lru$", heroku("redis:info", cwd=repo).stdout, re.M)

    # Maintenance mode: the router answers 503 until it is off again.
    on = heroku("maintenance:on", cwd=repo)
    assert f"Enabling maintenance mode for {app}... done" in on.stderr
    wait_for(lambda: hana.get(app).status_code == 503)
    assert heroku("maintenance", cwd=repo).stdout == "on\n"
    off = heroku("maintenance:off", cwd=repo)
    assert f"Disabling maintenance mode for {app}... done" in off.stderr
    wait_for(lambda: hana.get(app).status_code == 200)

    # Custom domains.
    added = heroku("domains:add", "www.example.com", cwd=repo)
    assert f"Adding www.example.com to {app}... done" in added.stderr
    assert "The domain www.example.com has been enqueued for addition" in added.stdout
    assert re.search(r"point to the DNS Target \S+\.$", added.stdout, re.M), added.stdout
    domains = heroku("domains", cwd=repo)
    assert domains.stdout.startswith(f"=== {app} Heroku Domain\n\n{app}.localhost\n"), (
        domains.stdout
    )
    assert f"=== {app} Custom Domains" in domains.stdout
    assert re.search(r"^\s+www\.example\.com\s+CNAME\s+\S+", domains.stdout, re.M)

    # Dyno types and restarts.
    types = heroku("ps:type", cwd=repo)
    assert re.search(r"^\s+web\s+Eco\s+1\s*$", types.stdout, re.M), types.stdout
    basic = heroku("ps:type", "web=basic", cwd=repo)
    assert f"Scaling dynos on {app}... done" in basic.stderr
    assert re.search(r"^\s+web\s+Basic\s+1\s+~\$0\.010\s+\$7\s*$", basic.stdout, re.M), basic.stdout
    wait_for(lambda: "=== web (Basic): gunicorn" in heroku("ps", cwd=repo).stdout)
    restarted = heroku("ps:restart", cwd=repo)
    assert f"Restarting all dynos on {app}... done" in restarted.stderr, restarted.stderr
    wait_for(lambda: hana.get(app).status_code == 200)

    # `heroku open`: BROWSER (read by the bundled xdg-open) records the URL instead.
    opened_file = heroku.home / "opened-url"
    browser = heroku.home / "record-url"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {opened_file}\n')
    browser.chmod(0o755)
    opened = heroku("open", cwd=repo, env={"BROWSER": str(browser)})
    assert opened.stdout == f"Opening {web_url}...\n"
    assert wait_for(lambda: opened_file.exists() and opened_file.read_text()) == f"{web_url}\n"

    # git:remote in another repository: the remote works with the CLI's git credentials.
    clone = heroku.home / "other-checkout"
    clone.mkdir()
    heroku.git("init", "-q", "-b", "main", cwd=clone)
    remote_set = heroku("git:remote", "-a", app, cwd=clone)
    assert remote_set.stdout == f"set git remote heroku to {git_url}\n"
    assert "refs/heads/main" in heroku.git("ls-remote", "heroku", cwd=clone).stdout

    # Tear down: the add-on, then the app (which also removes the `heroku` remote).
    destroyed_addon = heroku("addons:destroy", database, "--confirm", app, cwd=repo)
    assert f"Destroying {database} on {app}... done" in destroyed_addon.stderr
    destroyed = heroku("apps:destroy", "--confirm", app, cwd=repo)
    assert f"Destroying {app} (including all add-ons)... done" in destroyed.stderr
    assert heroku.git("remote", cwd=repo).stdout == ""
    assert hana.get(app).status_code == 404

    logout = heroku("logout")
    assert "Logging out... done" in logout.stderr
    netrc_file = heroku.home / ".netrc"
    assert not netrc_file.exists() or "localhost" not in netrc_file.read_text()
    assert "not logged in" in heroku("auth:whoami", expect=100).stderr

    # The guard was loaded and saw the CLI talk to Kapal, and to nothing else.
    entries = heroku.guard_entries()
    assert any(e["kind"] == "connect" and e["allowed"] for e in entries), entries
    assert {e["host"] for e in entries} <= LOCAL_HOSTS, entries
