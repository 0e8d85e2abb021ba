"""`kapal up`: the whole platform on this machine — API, agent, router — until Ctrl-C."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from kapal.entrypoints.logging_setup import configure as configure_logging
from kapal.settings import Settings

if TYPE_CHECKING:
    from kapal.addons.mysql_server import ManagedMariaDB
    from kapal.addons.postgres_cluster import ManagedCluster
    from kapal.addons.redis import RedisFleet
    from kapal.store.db import Store

log = logging.getLogger(__name__)

PROCESSES = ("agent", "router", "api")  # started in this order, stopped in reverse
# A child that ran this long before it died is started again at once: apps wait for the agent
# and the router. One that dies sooner waits RESTART_DELAY, so a crash loop does not spin.
STABLE_AFTER = 5.0
RESTART_DELAY = 2.0


def prepare_data_dir(settings: Settings) -> None:
    """Create the data directory. The unprivileged users (PostgreSQL's, MariaDB's, Redis's,
    and the one dynos and builds run as) may pass through (0711) to their own directories
    below it; everything else is private to Kapal."""
    passable = (
        settings.data_dir,
        settings.builds_dir,
        settings.cache_dir,
        settings.dynos_dir,
        settings.addons_dir,
    )
    private = (
        settings.run_dir,
        settings.repos_dir,
        settings.slugs_dir,
        settings.sources_dir,
        settings.secrets_dir,
        settings.data_dir / "state",
    )
    for path in passable + private:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o711 if path in passable else 0o700)


def make_certificates(settings: Settings) -> None:
    """The local CA and what it signs for the router and the platform, made once here rather
    than raced by the processes that serve them, in a child (the x509 builder stays out)."""
    from kapal.entrypoints.router_workers import in_child
    from kapal.router.localcerts import local_certificate, platform_certificate

    def make() -> None:
        local_certificate(settings.tls_dir, settings.apps_domain)
        platform_certificate(settings.tls_dir)

    in_child(make)


def missing_tools(settings: Settings) -> list[str]:
    missing = [tool for tool in ("git",) if shutil.which(tool) is None]
    if not os.path.exists("/usr/lib/git-core/git-http-backend"):
        missing.append("git http-backend (/usr/lib/git-core/git-http-backend)")
    if not os.access(settings.build_python, os.X_OK):
        missing.append(f"a Python for builds ({settings.build_python})")
    return missing


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Supervisor:
    """Runs each server process as a child and restarts it if it dies on its own."""

    env: Mapping[str, str]
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    stopping: bool = False

    def start(self, name: str) -> None:
        argv = [sys.executable, "-m", f"kapal.entrypoints.{name}"]
        self.children[name] = subprocess.Popen(argv, env=dict(self.env))
        self.started[name] = time.monotonic()

    def watch(self) -> None:
        while not self.stopping:
            time.sleep(0.1)
            for name, child in list(self.children.items()):
                if child.poll() is not None and not self.stopping:
                    log.warning("%s exited with status %s; restarting it", name, child.returncode)
                    if time.monotonic() - self.started[name] < STABLE_AFTER:
                        time.sleep(RESTART_DELAY)
                    if not self.stopping:
                        self.start(name)

    def stop(self, grace: float) -> None:
        self.stopping = True
        for name in reversed(PROCESSES):
            child = self.children.get(name)
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def say(text: str) -> None:
    """A status line that cannot stop the shutdown: whoever read our output may be gone."""
    with contextlib.suppress(OSError):
        click.echo(text)


def wait_ready(settings: Settings, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    ports = [settings.api_port, settings.api_tls_port, settings.router_port, settings.logs_port]
    if settings.router_tls_port:  # 0: a free port, which only the router knows
        ports.append(settings.router_tls_port)
    while time.monotonic() < deadline:
        if all(port_open(settings.bind, port) for port in ports):
            return True
        time.sleep(0.1)
    return False


@click.command("up")
def up() -> None:
    """Run Kapal here: API + dashboard, router and agent, until Ctrl-C.

    Settings come from KAPAL_* environment variables (the README's Settings table), such as
    KAPAL_DATA_DIR (/var/lib/kapal as root, else ~/.local/share/kapal) and KAPAL_API_PORT,
    KAPAL_ROUTER_PORT and the other ports.
    """
    # Imported here, not at the top: every `kapal` command loads this module, and the store
    # (SQLAlchemy, Alembic) would add most of a second to each of them.
    from kapal.store.db import Store

    configure_logging("kapal")
    try:
        settings = Settings.from_env(os.environ)
    except ValueError as exc:
        raise click.ClickException(f"a KAPAL_* setting is not valid: {exc}") from None
    missing = missing_tools(settings)
    if missing:
        raise click.ClickException("missing: " + ", ".join(missing) + " (run `make up` as root)")
    prepare_data_dir(settings)
    make_certificates(settings)
    store = Store.open(settings.database_url)  # migrate once, before the children
    addons = _postgres(settings)
    mysql: ManagedMariaDB | None = None
    redis: RedisFleet | None = None
    env = {**os.environ, "KAPAL_DATA_DIR": str(settings.data_dir)}
    supervisor = Supervisor(env)
    stop_now = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stop_now
        stop_now = True
        supervisor.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        mysql = _mysql(settings)  # these before the dynos that use them
        redis = _redis(settings, store)
        for name in PROCESSES:
            supervisor.start(name)
        if wait_ready(settings) and not stop_now:
            click.echo(
                f"\nKapal is up.\n"
                f"  Dashboard and API  {settings.api_url}/\n"
                f"  Apps               http://<app>.{settings.apps_domain}:{settings.router_port}/\n"
                f"                     https://<app>.{settings.apps_domain}:"
                f"{settings.router_tls_port}/ (trust {settings.tls_dir / 'ca.pem'})\n"
                f"  git over HTTPS     https://{settings.git_host}/<app>.git\n"
                f"  Data               {settings.data_dir}\n\n"
                f"Next: `kapal signup`, then `kapal create` in your app's git repository and "
                f"`git push kapal main`.\nThe official Heroku CLI works too: see "
                f"`kapal heroku-env`.\nPress Ctrl-C to stop Kapal and its dynos.\n"
            )
        elif not stop_now:
            click.echo("Kapal's processes did not all start; see the messages above.", err=True)
        supervisor.watch()
    finally:
        say("Stopping Kapal...")
        supervisor.stop(settings.stop_grace + 5)
        if redis is not None:
            redis.close()
        if mysql is not None:
            mysql.stop()
        if addons is not None:
            addons.stop()
        store.engine.dispose()
        say("Stopped.")


def _postgres(settings: Settings) -> ManagedCluster | None:
    """The Kapal-managed PostgreSQL for add-ons, unless an external server is configured."""
    from kapal.addons.errors import ClusterError
    from kapal.addons.postgres_cluster import ManagedCluster

    if settings.postgres_admin_url:
        return None
    cluster = ManagedCluster(settings)
    try:
        cluster.ensure_running()
    except ClusterError as exc:
        raise click.ClickException(f"PostgreSQL for add-ons did not start: {exc}") from exc
    return cluster


def _mysql(settings: Settings) -> ManagedMariaDB | None:
    """Kapal's own MariaDB for kapal-mysql add-ons, unless KAPAL_MYSQL_ADMIN_URL names a
    server. Started at once (about 70 MB, under a second), as PostgreSQL is; when MariaDB is
    not installed Kapal runs without it, and creating a kapal-mysql add-on says what to do."""
    from kapal.addons.errors import ClusterError
    from kapal.addons.mysql_server import PACKAGES, ManagedMariaDB

    if settings.mysql_admin_url:
        return None
    server = ManagedMariaDB(settings)
    if not server.installed():
        log.warning(
            "MariaDB is not installed (%s): no kapal-mysql add-ons until it is "
            "(`apt-get install %s`) or KAPAL_MYSQL_ADMIN_URL names a server",
            server.mariadbd,
            PACKAGES,
        )
        return None
    try:
        server.ensure_running()
    except ClusterError as exc:
        raise click.ClickException(f"MariaDB for add-ons did not start: {exc}") from exc
    return server


def _redis(settings: Settings, store: Store) -> RedisFleet:
    """The servers of the kapal-redis add-ons, running from now until `close`."""
    from kapal.addons.redis import RedisFleet, RedisProvisioner
    from kapal.services.redis import provisioned_redis_addons

    fleet = RedisFleet(RedisProvisioner(settings), lambda: provisioned_redis_addons(store))
    fleet.start()
    return fleet
