"""The RabbitMQ provisioner: one vhost and one user per add-on, the user allowed only there.

Two ways to reach the server, chosen by the admin URL's scheme: `http(s)://` talks to the
management plugin's HTTP API; `amqp(s)://` runs `rabbitmqctl` on this machine (the URL's host
and port are then only what apps are given). Either way only a password hash is sent, never
the password, so it shows up in no command line, request log or server log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit

import httpx

from kapal.addons.catalog import RABBITMQ, Plan
from kapal.addons.errors import ProvisionError

log = logging.getLogger(__name__)

SETTING = "KAPAL_RABBITMQ_ADMIN_URL"
HASHING = "rabbit_password_hashing_sha256"
_LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
_SAFE_NAME = re.compile(r"^[a-z][a-z0-9-]{1,55}$")
ALL = ".*"


def vhost_name(addon_name: str) -> str:
    """The vhost and user of an add-on: rabbitmq-silent-12345 -> kapal_rabbitmq_silent_12345."""
    if not _SAFE_NAME.match(addon_name):
        raise ValueError(f"not a valid add-on name: {addon_name!r}")
    return "kapal_" + addon_name.replace("-", "_")


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's SHA-256 hash: base64(salt + sha256(salt + password)), 4 bytes of salt."""
    salt = salt if salt is not None else os.urandom(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def amqp_url(user: str, password: str, host: str, port: int, vhost: str, scheme: str) -> str:
    def q(text: str) -> str:
        return quote(text, safe="")

    return f"{scheme}://{q(user)}:{q(password)}@{host}:{port}/{q(vhost)}"


def definitions(vhost: str, user: str, hashed: str, max_connections: int) -> str:
    """What `rabbitmqctl import_definitions` creates (or updates) in one call."""
    return json.dumps(
        {
            "users": [
                {"name": user, "password_hash": hashed, "hashing_algorithm": HASHING, "tags": []}
            ],
            "vhosts": [{"name": vhost}],
            "permissions": [
                {"user": user, "vhost": vhost, "configure": ALL, "write": ALL, "read": ALL}
            ],
            "parameters": [
                {
                    "vhost": vhost,
                    "component": "vhost-limits",
                    "name": "limits",
                    "value": {"max-connections": max_connections},
                }
            ],
        }
    )


class Backend(Protocol):
    def create(self, vhost: str, user: str, hashed: str, max_connections: int) -> None: ...

    def delete(self, vhost: str, user: str) -> None: ...


class RabbitProvisioner:
    """Provisions add-on vhosts through the management API or rabbitmqctl."""

    def __init__(
        self,
        admin_url: str,
        *,
        rabbitmqctl: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        usage = (
            f"Set {SETTING} to amqp://user:password@127.0.0.1:5672/ (rabbitmqctl on this "
            "machine) or to the management API's http://user:password@host:15672/."
        )
        if not admin_url:
            raise ProvisionError(f"kapal-rabbitmq needs a RabbitMQ server. {usage}")
        try:
            parts = urlsplit(admin_url)
            port = parts.port
        except ValueError:
            raise ProvisionError(f"{SETTING} is not a valid URL. {usage}") from None
        if parts.scheme not in ("amqp", "amqps", "http", "https") or not parts.hostname:
            raise ProvisionError(f"{SETTING} is not an amqp:// or http:// URL. {usage}")
        host = parts.hostname
        self.public_host = "localhost" if host in _LOCAL_HOSTS else host
        self.scheme = "amqps" if parts.scheme == "amqps" else "amqp"
        self.backend: Backend
        if parts.scheme in ("http", "https"):
            self.public_port = 5672
            self.backend = ManagementApi(
                f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path.rstrip('/')}",
                (unquote(parts.username or ""), unquote(parts.password or "")),
                transport=transport,
                timeout=timeout,
            )
        else:
            self.public_port = port or (5671 if parts.scheme == "amqps" else 5672)
            self.backend = Rabbitmqctl(rabbitmqctl, timeout=timeout)

    def provision(self, name: str, plan: str) -> dict[str, str]:
        """Create (or update) the add-on's vhost and user; returns {"URL": ...}."""
        limit = _plan(plan).connection_limit
        vhost = vhost_name(name)
        # A user left by a crashed attempt gets a new password: nobody has seen the old one.
        password = secrets.token_urlsafe(24)
        self.backend.create(vhost, vhost, password_hash(password), limit)
        log.info("provisioned RabbitMQ vhost for add-on %s", name)
        url = amqp_url(vhost, password, self.public_host, self.public_port, vhost, self.scheme)
        return {"URL": url}

    def deprovision(self, name: str) -> None:
        """Delete the add-on's user and vhost (its queues and messages); missing is fine."""
        vhost = vhost_name(name)
        self.backend.delete(vhost, vhost)
        log.info("deprovisioned RabbitMQ vhost of add-on %s", name)


class Rabbitmqctl:
    """The server's own CLI on this machine (about a second a call, so as few as can be)."""

    def __init__(self, program: str | None = None, *, timeout: float = 60.0) -> None:
        self.program = program or shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
        self.timeout = timeout

    def create(self, vhost: str, user: str, hashed: str, max_connections: int) -> None:
        # One call for all four, the hash on stdin.
        self._run(
            ["import_definitions", "--format", "json"],
            stdin=definitions(vhost, user, hashed, max_connections),
        )

    def delete(self, vhost: str, user: str) -> None:
        # Independent, so both at once: deleting the vhost closes its connections and
        # drops its queues; without the user none can be opened again.
        with ThreadPoolExecutor(2) as pool:
            calls = [
                pool.submit(self._run, ["delete_user", user], missing_ok=True),
                pool.submit(self._run, ["delete_vhost", vhost], missing_ok=True),
            ]
        for call in calls:
            call.result()

    def _run(self, args: list[str], *, stdin: str = "", missing_ok: bool = False) -> None:
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": os.environ.get("HOME", "/"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
        }
        try:
            done = subprocess.run(
                [self.program, "--quiet", *args],
                input=stdin,
                capture_output=True,
                text=True,
                env=env,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise ProvisionError(
                f"RabbitMQ: {self.program} was not found; install RabbitMQ here or set "
                f"{SETTING} to the management API's http:// URL."
            ) from None
        except subprocess.TimeoutExpired:
            raise ProvisionError(f"RabbitMQ: rabbitmqctl {args[0]} timed out.") from None
        output = f"{done.stderr}\n{done.stdout}"
        if done.returncode == 0 or (missing_ok and "does not exist" in output):
            return
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        detail = next((line for line in lines if line != "Error:"), f"exit {done.returncode}")
        raise ProvisionError(f"RabbitMQ: rabbitmqctl {args[0]}: {detail}")


class ManagementApi:
    """The management plugin's HTTP API."""

    def __init__(
        self,
        base_url: str,
        auth: tuple[str, str],
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url
        self.auth = auth
        self.transport = transport
        self.timeout = timeout

    def create(self, vhost: str, user: str, hashed: str, max_connections: int) -> None:
        v, u = quote(vhost, safe=""), quote(user, safe="")
        with self._client() as client:
            self._call(client, "PUT", f"/api/vhosts/{v}", {})
            body = {"password_hash": hashed, "hashing_algorithm": HASHING, "tags": ""}
            self._call(client, "PUT", f"/api/users/{u}", body)
            perms = {"configure": ALL, "write": ALL, "read": ALL}
            self._call(client, "PUT", f"/api/permissions/{v}/{u}", perms)
            limit = {"value": max_connections}
            self._call(client, "PUT", f"/api/vhost-limits/{v}/max-connections", limit)

    def delete(self, vhost: str, user: str) -> None:
        with self._client() as client:
            self._call(client, "DELETE", f"/api/users/{quote(user, safe='')}", None)
            self._call(client, "DELETE", f"/api/vhosts/{quote(vhost, safe='')}", None)

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, auth=self.auth, transport=self.transport, timeout=self.timeout
        )

    def _call(self, client: httpx.Client, method: str, path: str, body: object) -> None:
        try:
            response = client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ProvisionError(f"RabbitMQ management API: {exc}") from None
        if response.is_success or (method == "DELETE" and response.status_code == 404):
            return
        try:
            data = response.json()
        except ValueError:
            data = None
        reason = data.get("reason") if isinstance(data, dict) else None
        detail = f": {reason}" if reason else ""
        raise ProvisionError(
            f"RabbitMQ management API: {method} {path} answered {response.status_code}{detail}"
        )


def _plan(name: str) -> Plan:
    plan = RABBITMQ.plan(name)
    if plan is None:
        raise ValueError(f"unknown {RABBITMQ.name} plan {name!r}")
    return plan
