"""kapal-redis: one redis-server per add-on, on its own 127.0.0.1 port with its own password,
and the fleet that keeps them running while Kapal runs.

Each add-on has a directory <addons_dir>/redis/<add-on name>/ (0700, owned by `kapal-redis`
when Kapal is root) with redis.conf, the pidfile, the log and, on persistent plans, the
append-only file. redis.conf is Kapal's record of the server (port, passwords, policy): it is
written only by Kapal, atomically, so a restart brings the server back as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from kapal.addons.catalog import REDIS, Plan
from kapal.addons.errors import ProvisionError
from kapal.addons.managed_server import ServerUser
from kapal.addons.naming import ADDON_NAME
from kapal.addons.redis_conf import DEFAULT_POLICY, POLICIES, ServerConf
from kapal.addons.redis_server import RedisServer, RedisServerError, locked
from kapal.addons.resp import RespError, parse_info
from kapal.domain.errors import InvalidParams
from kapal.settings import Settings
from kapal.system_users import RunAs

log = logging.getLogger(__name__)

SYSTEM_USER = "kapal-redis"
# Ports are picked below the kernel's ephemeral range, so that an outgoing connection's
# local port cannot take a stopped server's port before it is started again.
PORTS_FROM = 16400
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


class RedisProvisioner:
    """Provisions kapal-redis add-ons as servers of their own under settings.addons_dir."""

    def __init__(self, settings: Settings, *, system_user: str = SYSTEM_USER) -> None:
        self.root = settings.addons_dir / "redis"
        self._binary = settings.redis_server
        self._user = ServerUser(system_user)

    def provision(self, name: str, plan: str) -> dict[str, str]:
        """Start (or finish starting) the add-on's server; returns {"URL": redis://...}."""
        limits = _plan(plan)
        try:
            server = self._server(name)
            self._prepare(server.directory)
            with locked(server.directory) as present:
                if not present:
                    raise ProvisionError(f"{server.directory} was removed during provisioning.")
                old = server.read_conf()
                with locked(self.root):  # two add-ons must not pick the same port
                    conf = ServerConf(
                        # A crashed attempt's port and passwords are reused: only its
                        # redis.conf has seen them.
                        port=old.port if old else self._free_port(),
                        password=old.password if old else secrets.token_hex(32),
                        admin_password=old.admin_password if old else secrets.token_hex(32),
                        memory_mb=limits.memory_mb,
                        maxclients=limits.connection_limit,
                        persistent=limits.persistent,
                        policy=old.policy if old else DEFAULT_POLICY,
                    )
                    if conf != old:
                        server.write_conf(conf)
                if conf != old or not _answers(server, conf):
                    server.stop()
                    server.start(conf)
        except (RedisServerError, OSError) as exc:
            raise _failed(name, exc) from exc
        log.info("provisioned Redis for add-on %s on 127.0.0.1:%d", name, conf.port)
        return {"URL": f"redis://:{conf.password}@localhost:{conf.port}"}

    def deprovision(self, name: str) -> None:
        """Stop the add-on's server and remove its directory; nothing there is fine."""
        try:
            server = self._server(name)
            with locked(server.directory) as present:
                if not present:
                    return
                server.stop()
                shutil.rmtree(server.directory)
        except OSError as exc:
            raise _failed(name, exc) from exc
        log.info("deprovisioned Redis of add-on %s", name)

    def names(self) -> list[str]:
        """The add-ons that have a server directory here."""
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return []
        return sorted(p.name for p in entries if p.is_dir() and ADDON_NAME.match(p.name))

    def start(self, name: str) -> bool:
        """Start the add-on's server unless it runs; True if it had to be started."""
        server = self._server(name)
        with locked(server.directory) as present:
            conf = server.read_conf() if present else None
            if conf is None or server.pid() is not None:
                return False
            server.start(conf)
            return True

    def stop(self, name: str) -> None:
        """Stop the add-on's server, keeping its data (an append-only file, if any)."""
        server = self._server(name)
        with locked(server.directory) as present:
            if present:
                server.stop()

    def info(self, name: str) -> dict[str, str] | None:
        """The server's INFO fields; None when it does not answer (stopped or starting)."""
        server = self._server(name)
        conf = server.read_conf()
        if conf is None:
            raise ProvisionError(f"The add-on {name} has no Redis server.")
        try:
            with server.admin(conf, timeout=2.0) as conn:
                reply = conn.call("INFO", "everything")
        except (OSError, RespError):
            return None
        return parse_info(_text(reply))

    def policy(self, name: str) -> str:
        """The key eviction policy in the add-on's redis.conf."""
        conf = self._server(name).read_conf()
        if conf is None:
            raise ProvisionError(f"The add-on {name} has no Redis server.")
        return conf.policy

    def set_policy(self, name: str, policy: str) -> None:
        """Change the key eviction policy now (CONFIG SET) and for every later start
        (redis.conf)."""
        if policy not in POLICIES:
            raise InvalidParams(
                f"Invalid policy {policy!r}. Valid policies: {', '.join(POLICIES)}."
            )
        server = self._server(name)
        with locked(server.directory) as present:
            conf = server.read_conf() if present else None
            if conf is None:
                raise ProvisionError(f"The add-on {name} has no Redis server.")
            server.write_conf(dataclasses.replace(conf, policy=policy))
            if server.pid() is not None:
                try:
                    with server.admin(conf) as conn:
                        conn.call("CONFIG", "SET", "maxmemory-policy", policy)
                except (OSError, RespError) as exc:
                    # redis.conf has it: the server gets it when the fleet restarts it.
                    log.warning("Redis of add-on %s did not take the policy now: %s", name, exc)

    def _server(self, name: str) -> RedisServer:
        if not ADDON_NAME.match(name):
            raise ValueError(f"not an add-on name: {name!r}")
        return RedisServer(self.root / name, self._binary, self._owner())

    def _prepare(self, directory: Path) -> None:
        """The add-on's directory, private to the server's user, reachable by it."""
        if not os.access(self._binary, os.X_OK):
            raise ProvisionError(
                f"{self._binary} not found: install Redis (`apt-get install redis-server`) "
                "or set KAPAL_REDIS_SERVER."
            )
        parent = self.root.parent
        if not parent.exists():
            parent.mkdir(parents=True)
            parent.chmod(0o711)
        self.root.mkdir(exist_ok=True)
        self.root.chmod(0o711)
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        owner = self._owner()
        if owner is not None:
            os.chown(directory, *owner)
            blocked = RunAs(self._user.name, *owner).unreachable(directory)
            if blocked is not None:
                raise ProvisionError(
                    f"{blocked} is not traversable by user {self._user.name}, which runs "
                    f"Redis in {directory}: `chmod o+x {blocked}` or choose another "
                    "KAPAL_DATA_DIR."
                )
        directory.chmod(0o700)

    def _owner(self) -> tuple[int, int] | None:
        """Root runs Redis as the system user; anyone else runs it as themselves."""
        return self._user.ids() if os.geteuid() == 0 else None

    def _free_port(self) -> int:
        """A port no other add-on's server has and nothing listens on now."""
        taken = set()
        for name in self.names():
            conf = self._server(name).read_conf()
            if conf is not None:
                taken.add(conf.port)
        try:
            below = int(_EPHEMERAL.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            below = 32768
        candidates = range(PORTS_FROM, below) if below > PORTS_FROM + 1000 else range(0)
        for _ in range(200 if candidates else 0):
            port = random.choice(candidates)
            if port not in taken and _bindable(port):
                return port
        for _ in range(20):  # a kernel whose ephemeral range leaves nothing below it
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
            if port not in taken:
                return port
        raise ProvisionError("No free port for a Redis server.")


class RedisFleet:
    """Keeps the servers of the add-ons `wanted` names running: all started by `start`,
    checked every `every` seconds by a thread of its own (one that dies is started again,
    a failing one with a growing delay), all stopped by `close`."""

    def __init__(
        self,
        provisioner: RedisProvisioner,
        wanted: Callable[[], Iterable[str]],
        *,
        every: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provisioner = provisioner
        self._wanted = wanted
        self._every = every
        self._clock = clock
        self._retry: dict[str, tuple[int, float]] = {}  # name: (failures, when to try again)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def reconcile(self) -> None:
        """One pass: start every wanted server that is not running."""
        try:
            wanted = set(self._wanted())
        except Exception:
            log.exception("could not read which Redis add-ons should run")
            return
        present = set(self.provisioner.names())
        for name in sorted(wanted & present):
            failures, when = self._retry.get(name, (0, 0.0))
            if self._stopping.is_set() or self._clock() < when:
                continue
            try:
                if self.provisioner.start(name):
                    log.info("started the Redis server of add-on %s", name)
            except (RedisServerError, OSError) as exc:
                delay = min(2.0**failures, 60.0)
                self._retry[name] = (failures + 1, self._clock() + delay)
                log.warning(
                    "Redis of add-on %s did not start (again in %.0f s): %s", name, delay, exc
                )
            else:
                self._retry.pop(name, None)

    def start(self) -> None:
        """Start the servers now, then watch them from a thread."""
        self.reconcile()
        self._thread = threading.Thread(target=self._watch, name="redis-fleet", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop watching, then stop every server (each writes out its append-only file)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        for name in self.provisioner.names():
            try:
                self.provisioner.stop(name)
            except OSError as exc:
                log.warning("could not stop the Redis server of add-on %s: %s", name, exc)

    def _watch(self) -> None:
        while not self._stopping.wait(self._every):
            try:
                self.reconcile()
            except Exception:
                log.exception("Redis fleet pass failed")


def _plan(name: str) -> Plan:
    plan = REDIS.plan(name)
    if plan is None:
        raise ValueError(f"unknown {REDIS.name} plan {name!r}")
    return plan


def _failed(name: str, exc: Exception) -> ProvisionError:
    """The first line for the user; all of it (the server's log lines) in Kapal's log."""
    log.warning("Redis of add-on %s: %s", name, exc)
    lines = str(exc).strip().splitlines()
    return ProvisionError(f"Redis: {lines[0] if lines else type(exc).__name__}")


def _answers(server: RedisServer, conf: ServerConf) -> bool:
    if server.pid() is None:
        return False
    try:
        with server.admin(conf, timeout=2.0) as conn:
            return conn.call("PING") == "PONG"
    except (OSError, RespError):
        return False


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _text(reply: object) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
