"""kapal-mysql and kapal-rabbitmq through the real API (and `kapal mysql:*` through the real
CLI and mysql client), on the machine's MariaDB and RabbitMQ."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pymysql
import pytest
from sqlalchemy import select
from tests.integration.addons.amqp_check import Refused, open_vhost
from tests.integration.addons.kapal_cli import Run, kapal_cli
from tests.integration.addons.servers import mysql_admin_url, rabbitmq_admin_url, rabbitmqctl

from kapal.addons.catalog import choice_of
from kapal.addons.mysql import database_name
from kapal.addons.provider import provisioner_for
from kapal.addons.rabbitmq import vhost_name
from kapal.services.apps import create_app
from kapal.services.context import Context
from kapal.settings import Settings
from kapal.store.models import Addon, User

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("drop_addons")]


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    """The add-on conftest's context, with MariaDB and RabbitMQ instead of PostgreSQL."""
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path}/state/k.db",
        mysql_admin_url=mysql_admin_url(),
        rabbitmq_admin_url=rabbitmq_admin_url(),
    )
    context = Context.create(settings)
    yield context
    context.log.close()
    context.store.engine.dispose()


@pytest.fixture
def drop_addons(ctx: Context) -> Iterator[None]:
    """Deprovision whatever add-ons a test left in the store."""
    yield
    with ctx.store.session() as s:
        rows = [(a.name, a.service, a.plan) for a in s.scalars(select(Addon))]
    for name, service, plan in rows:
        provisioner_for(ctx.settings, choice_of(service, plan).service).deprovision(name)


@pytest.fixture
def http(api_url: str, token: str, ctx: Context, user: User) -> Iterator[httpx.Client]:
    create_app(ctx, user, "api-app")
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.heroku+json; version=3",
    }
    with httpx.Client(base_url=api_url, headers=headers, timeout=60) as client:
        yield client


def mysql_query(url: str, sql: str) -> list[tuple[object, ...]]:
    parts = urlsplit(url)
    with (
        pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")) or None,
            connect_timeout=5,
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(sql)
        return list(cur.fetchall())


def descriptions(http: httpx.Client) -> list[str]:
    return [r["description"] for r in http.get("/apps/api-app/releases").json()]


def test_mysql_sets_mysql_url_releases_and_is_destroyed(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        created = http.post("/apps/api-app/addons", json={"plan": "kapal-mysql"})
    assert created.status_code == 201, created.text
    addon = created.json()
    assert addon["name"].startswith("mysql-")
    assert addon["plan"]["name"] == "kapal-mysql:mini"
    assert addon["config_vars"] == ["MYSQL_URL"]
    assert descriptions(http)[-1] == f"Attach MYSQL (@ref:{addon['name']})"

    url = http.get("/apps/api-app/config-vars").json()["MYSQL_URL"]
    ident = database_name(addon["name"])
    assert url.startswith(f"mysql://{ident}:")
    assert mysql_query(url, "SELECT DATABASE(), @@max_user_connections") == [(ident, 10)]
    password = unquote(urlsplit(url).password or "")
    assert not [r for r in caplog.records if password in r.getMessage()]

    deleted = http.delete(f"/apps/api-app/addons/{addon['name']}")
    assert deleted.status_code == 200, deleted.text
    assert "MYSQL_URL" not in http.get("/apps/api-app/config-vars").json()
    assert descriptions(http)[-1] == f"Detach MYSQL (@ref:{addon['name']})"
    admin = mysql_admin_url()
    assert mysql_query(admin, f"SHOW DATABASES LIKE '{ident}'") == []
    assert mysql_query(admin, f"SELECT 1 FROM mysql.user WHERE User = '{ident}'") == []  # noqa: S608


def test_mysql_as_database_sets_database_url(http: httpx.Client) -> None:
    body = {"plan": "kapal-mysql:standard-0", "attachment": {"name": "DATABASE"}}
    addon = http.post("/apps/api-app/addons", json=body).json()
    assert addon["config_vars"] == ["DATABASE_URL"]
    config = http.get("/apps/api-app/config-vars").json()
    assert "MYSQL_URL" not in config
    assert mysql_query(config["DATABASE_URL"], "SELECT @@max_user_connections") == [(60,)]


def test_rabbitmq_sets_amqp_url_and_is_destroyed(http: httpx.Client) -> None:
    created = http.post("/apps/api-app/addons", json={"plan": "kapal-rabbitmq:tiger"})
    assert created.status_code == 201, created.text
    addon = created.json()
    assert addon["name"].startswith("rabbitmq-")
    assert addon["config_vars"] == ["AMQP_URL"]
    url = http.get("/apps/api-app/config-vars").json()["AMQP_URL"]
    open_vhost(url)

    assert http.delete(f"/apps/api-app/addons/{addon['name']}").status_code == 200
    assert "AMQP_URL" not in http.get("/apps/api-app/config-vars").json()
    assert vhost_name(addon["name"]) not in rabbitmqctl("list_vhosts").split()
    with pytest.raises(Refused):
        open_vhost(url)


@pytest.fixture
def kapal(api_url: str, token: str, ctx: Context, user: User, tmp_path: Path) -> Run:
    create_app(ctx, user, "cli-app")
    return kapal_cli(api_url, token, tmp_path / "home")


def test_mysql_cli_and_info_with_the_real_client(
    kapal: Run, capfd: pytest.CaptureFixture[str]
) -> None:
    assert shutil.which("mysql"), "the mysql client (mariadb-client) must be installed"
    created = kapal("addons:create", "kapal-mysql", "-a", "cli-app")
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("Created mysql-")
    assert created.stdout.splitlines()[0].endswith(" as MYSQL_URL")
    capfd.readouterr()

    ok = kapal("mysql:cli", "-a", "cli-app", "-e", "CREATE TABLE t (v INT); SELECT 6 * 7")
    assert ok.exit_code == 0, ok.output
    assert "42" in capfd.readouterr().out  # the client writes to the real stdout

    failed = kapal("mysql:cli", "MYSQL_URL", "-a", "cli-app", "-e", "SELECT * FROM nope")
    assert failed.exit_code == 1
    assert "nope" in capfd.readouterr().err

    info = kapal("mysql:info", "-a", "cli-app")
    assert info.exit_code == 0, info.output
    lines = info.stdout.splitlines()
    assert lines[0] == "=== MYSQL_URL"
    assert "Plan:          mini" in lines
    assert "Connections:   1/10" in lines
    assert "Tables:        1" in lines
    fields = dict(line.split(": ", 1) for line in lines[2:])
    assert fields["Data Size"].endswith(" / 1 GB")
    assert fields["MySQL Version"].strip()[0].isdigit()
