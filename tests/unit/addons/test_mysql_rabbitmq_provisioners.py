"""The MySQL and RabbitMQ provisioners without their servers: names, password hashes, admin
URLs, and what reaches rabbitmqctl (a stand-in program) and the management API (a fake)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from kapal.addons.catalog import MYSQL, RABBITMQ
from kapal.addons.errors import ProvisionError
from kapal.addons.mysql import (
    MysqlProvisioner,
    database_name,
    grant_pattern,
    native_hash,
    parse_admin_url,
    quote_identifier,
)
from kapal.addons.provider import provisioner_for
from kapal.addons.rabbitmq import RabbitProvisioner, password_hash, vhost_name
from kapal.settings import Settings

SECRET = "Sup3r-secret"


def password_of(url: str) -> str:
    return unquote(urlsplit(url).password or "")


# --- MySQL ---------------------------------------------------------------------------------


def test_database_and_user_names_come_from_the_addon_name() -> None:
    assert database_name("mysql-silent-12345") == "kapal_mysql_silent_12345"
    assert len(database_name("m" + "x" * 49)) <= 64
    for bad in ("Mysql", "a", "x;drop", "mysql_x", "-x"):
        with pytest.raises(ValueError, match="not a valid add-on name"):
            database_name(bad)


def test_identifiers_are_checked_and_grant_patterns_escape_wildcards() -> None:
    assert quote_identifier("kapal_a_b") == "`kapal_a_b`"
    assert grant_pattern("kapal_a_b") == "`kapal\\_a\\_b`"
    for bad in ("a`b", "A", "kapal-x", "x" * 65):
        with pytest.raises(ValueError):
            quote_identifier(bad)


def test_native_hash_is_what_the_server_computes() -> None:
    # SELECT PASSWORD('pw-Test_1') on MariaDB 10.11
    assert native_hash("pw-Test_1") == "*2605B1FEBE237D740E144396C06A62D9C6555020"


def test_admin_url_fields_and_errors_that_name_the_setting_not_the_url() -> None:
    admin = parse_admin_url("mysql://root:pa%40ss@db.internal:3307/ignored")
    assert (admin.host, admin.port, admin.user, admin.password) == (
        "db.internal",
        3307,
        "root",
        "pa@ss",
    )
    assert parse_admin_url("mariadb://root@127.0.0.1").port == 3306
    for bad in (
        "",
        f"postgres://root:{SECRET}@h",
        f"mysql://:{SECRET}@h",
        f"mysql://r:{SECRET}@h:x",
    ):
        with pytest.raises(ProvisionError) as failed:
            parse_admin_url(bad)
        assert "KAPAL_MYSQL_ADMIN_URL" in failed.value.message
        assert SECRET not in failed.value.message


def test_apps_reach_a_local_server_by_its_address_not_localhost() -> None:
    # mysqlclient would take `localhost` for the machine's default socket, not this port.
    assert MysqlProvisioner("mysql://root@localhost:13306").public_host == "127.0.0.1"
    remote = MysqlProvisioner("mysql://root@db.internal:3307")
    assert (remote.public_host, remote.public_port) == ("db.internal", 3307)


def test_provisioner_for_needs_the_admin_urls(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ProvisionError, match="KAPAL_MYSQL_ADMIN_URL"):
        provisioner_for(settings, MYSQL)
    with pytest.raises(ProvisionError, match="KAPAL_RABBITMQ_ADMIN_URL"):
        provisioner_for(settings, RABBITMQ)
    configured = Settings(
        data_dir=tmp_path,
        mysql_admin_url="mysql://root@127.0.0.1:3306",
        rabbitmq_admin_url="amqp://guest:guest@127.0.0.1:5672/",
    )
    assert isinstance(provisioner_for(configured, MYSQL), MysqlProvisioner)
    assert isinstance(provisioner_for(configured, RABBITMQ), RabbitProvisioner)


# --- RabbitMQ ------------------------------------------------------------------------------


def test_rabbitmq_password_hash_is_salted_sha256() -> None:
    hashed = base64.b64decode(password_hash(SECRET, salt=b"\x01\x02\x03\x04"))
    assert (
        hashed
        == b"\x01\x02\x03\x04" + hashlib.sha256(b"\x01\x02\x03\x04" + b"Sup3r-secret").digest()
    )
    assert password_hash(SECRET) != password_hash(SECRET)  # a new salt each time


def test_rabbitmq_admin_url_errors_name_the_setting() -> None:
    for bad in ("", f"redis://u:{SECRET}@h", f"amqp://u:{SECRET}@h:port"):
        with pytest.raises(ProvisionError) as failed:
            RabbitProvisioner(bad)
        assert "KAPAL_RABBITMQ_ADMIN_URL" in failed.value.message
        assert SECRET not in failed.value.message


def test_amqps_urls_keep_their_scheme_and_port(tmp_path: Path) -> None:
    tls = RabbitProvisioner("amqps://u:p@mq.internal/", rabbitmqctl=str(tmp_path / "ctl"))
    assert (tls.scheme, tls.public_host, tls.public_port) == ("amqps", "mq.internal", 5671)
    assert vhost_name("rabbitmq-silent-12345") == "kapal_rabbitmq_silent_12345"


def fake_rabbitmqctl(tmp_path: Path, body: str = "exit 0") -> Path:
    """A stand-in that appends its arguments and standard input to calls.log."""
    program = tmp_path / "rabbitmqctl"
    log = tmp_path / "calls.log"
    program.write_text(
        f'#!/bin/sh\necho "ARGS $*" >> {log}\necho "STDIN $(cat)" >> {log}\n{body}\n'
    )
    program.chmod(0o755)
    return program


def test_rabbitmqctl_gets_one_call_and_the_hash_on_stdin_only(tmp_path: Path) -> None:
    program = fake_rabbitmqctl(tmp_path)
    provisioner = RabbitProvisioner("amqp://guest:guest@127.0.0.1:5672/", rabbitmqctl=str(program))
    url = provisioner.provision("rabbitmq-silent-12345", "tiger")["URL"]
    assert url.startswith("amqp://kapal_rabbitmq_silent_12345:")
    assert url.endswith("@localhost:5672/kapal_rabbitmq_silent_12345")

    args, stdin = (tmp_path / "calls.log").read_text().splitlines()
    assert args == "ARGS --quiet import_definitions --format json"
    password = password_of(url)
    assert password not in args
    assert password not in stdin
    defs = json.loads(stdin.removeprefix("STDIN "))
    (user,) = defs["users"]
    hashed = base64.b64decode(user["password_hash"])
    assert hashed[4:] == hashlib.sha256(hashed[:4] + password.encode()).digest()
    assert defs["vhosts"] == [{"name": "kapal_rabbitmq_silent_12345"}]
    assert defs["permissions"][0]["user"] == "kapal_rabbitmq_silent_12345"
    assert defs["parameters"][0]["value"] == {"max-connections": 100}


def test_rabbitmqctl_deletes_user_and_vhost_and_missing_ones_are_fine(tmp_path: Path) -> None:
    program = fake_rabbitmqctl(tmp_path, 'echo "Error: User does not exist" >&2; exit 67')
    RabbitProvisioner("amqp://g:g@127.0.0.1/", rabbitmqctl=str(program)).deprovision("mq-x1")
    calls = sorted(
        line for line in (tmp_path / "calls.log").read_text().splitlines() if "ARGS" in line
    )
    assert calls == [
        "ARGS --quiet delete_user kapal_mq_x1",
        "ARGS --quiet delete_vhost kapal_mq_x1",
    ]


def test_rabbitmqctl_failures_are_provision_errors(tmp_path: Path) -> None:
    program = fake_rabbitmqctl(tmp_path, 'echo "Error:" >&2; echo "nodedown" >&2; exit 69')
    provisioner = RabbitProvisioner("amqp://g:g@127.0.0.1/", rabbitmqctl=str(program))
    with pytest.raises(ProvisionError, match="rabbitmqctl import_definitions: nodedown"):
        provisioner.provision("mq-x1", "lemur")
    missing = RabbitProvisioner("amqp://g:g@127.0.0.1/", rabbitmqctl=str(tmp_path / "none"))
    with pytest.raises(ProvisionError, match="was not found"):
        missing.deprovision("mq-x1")


class FakeManagement:
    def __init__(self, status: int = 201) -> None:
        self.requests: list[httpx.Request] = []
        self.status = status

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "DELETE":
            return httpx.Response(404, json={"error": "Object Not Found"})
        if self.status >= 400:
            return httpx.Response(self.status, json={"error": "x", "reason": "disk alarm"})
        return httpx.Response(self.status)


def test_management_api_calls_with_the_hash_and_basic_auth() -> None:
    fake = FakeManagement()
    provisioner = RabbitProvisioner(
        f"https://admin:{SECRET}@mq.internal:15671/rabbit/",
        transport=httpx.MockTransport(fake.handle),
    )
    url = provisioner.provision("mq-x1", "lemur")["URL"]
    assert url.startswith("amqp://kapal_mq_x1:")
    assert url.endswith("@mq.internal:5672/kapal_mq_x1")
    assert [(r.method, r.url.path) for r in fake.requests] == [
        ("PUT", "/rabbit/api/vhosts/kapal_mq_x1"),
        ("PUT", "/rabbit/api/users/kapal_mq_x1"),
        ("PUT", "/rabbit/api/permissions/kapal_mq_x1/kapal_mq_x1"),
        ("PUT", "/rabbit/api/vhost-limits/kapal_mq_x1/max-connections"),
    ]
    assert {r.url.host for r in fake.requests} == {"mq.internal"}
    token = base64.b64encode(f"admin:{SECRET}".encode()).decode()
    assert {r.headers["authorization"] for r in fake.requests} == {f"Basic {token}"}
    user = json.loads(fake.requests[1].content)
    assert set(user) == {"password_hash", "hashing_algorithm", "tags"}
    assert json.loads(fake.requests[3].content) == {"value": 20}
    assert not [r for r in fake.requests if password_of(url).encode() in r.content]

    fake.requests.clear()
    provisioner.deprovision("mq-x1")  # 404s: already gone
    assert [(r.method, r.url.path) for r in fake.requests] == [
        ("DELETE", "/rabbit/api/users/kapal_mq_x1"),
        ("DELETE", "/rabbit/api/vhosts/kapal_mq_x1"),
    ]


def test_management_api_errors_say_what_failed_without_secrets() -> None:
    fake = FakeManagement(status=500)
    provisioner = RabbitProvisioner(
        f"http://admin:{SECRET}@mq.internal:15672/", transport=httpx.MockTransport(fake.handle)
    )
    with pytest.raises(ProvisionError) as failed:
        provisioner.provision("mq-x1", "lemur")
    assert failed.value.message == (
        "RabbitMQ management API: PUT /api/vhosts/kapal_mq_x1 answered 500: disk alarm"
    )
