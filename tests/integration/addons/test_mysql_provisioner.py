"""The MySQL provisioner against the machine's MariaDB: isolation, limits, idempotence."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from contextlib import ExitStack
from urllib.parse import unquote, urlsplit

import pymysql
import pytest
from tests.integration.addons.servers import mysql_admin_url

from kapal.addons.errors import ProvisionError
from kapal.addons.mysql import MysqlProvisioner, database_name, quote_identifier

pytestmark = pytest.mark.timeout(120)

ACCESS_DENIED = 1045
NO_SUCH_USER = 1698  # MariaDB's access denied for a user that does not exist
DB_ACCESS_DENIED = 1044
TABLE_ACCESS_DENIED = 1142
USER_LIMIT_REACHED = 1226

Name = Callable[..., str]


@pytest.fixture
def admin_url() -> str:
    return mysql_admin_url()


@pytest.fixture
def provisioner(admin_url: str) -> MysqlProvisioner:
    return MysqlProvisioner(admin_url)


def connect(url: str, database: str | None = None) -> pymysql.connections.Connection:
    parts = urlsplit(url)
    path = unquote(parts.path.lstrip("/"))
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=path if database is None else database or None,
        connect_timeout=5,
        autocommit=True,
    )


def query(url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, args or None)
        return list(cur.fetchall())


def error_code(info: pytest.ExceptionInfo[pymysql.err.MySQLError]) -> int:
    return int(info.value.args[0])


def user_exists(admin_url: str, user: str) -> bool:
    return bool(query(admin_url, "SELECT 1 FROM mysql.user WHERE User = %s", user))


def database_exists(admin_url: str, database: str) -> bool:
    rows = query(
        admin_url,
        "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
        database,
    )
    return bool(rows)


def test_provisioned_url_works_for_tables_and_rows(
    provisioner: MysqlProvisioner, addon_name: Name
) -> None:
    name = addon_name()
    url = provisioner.provision(name, "mini")["URL"]
    ident = database_name(name)
    assert url.startswith(f"mysql://{ident}:")
    assert url.endswith(f"@127.0.0.1:{provisioner.public_port}/{ident}")
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE visits (id INT AUTO_INCREMENT PRIMARY KEY, at DATETIME)")
        cur.execute("INSERT INTO visits (at) VALUES (NOW())")
        cur.execute("SELECT COUNT(*), CURRENT_USER(), DATABASE() FROM visits")
        assert cur.fetchone() == (1, f"{ident}@%", ident)


def test_the_user_has_its_plan_connection_limit_and_one_grant(
    provisioner: MysqlProvisioner, addon_name: Name, admin_url: str
) -> None:
    name = addon_name()
    url = provisioner.provision(name, "standard-0")["URL"]
    ident = database_name(name)
    grants = [str(row[0]) for row in query(admin_url, "SHOW GRANTS FOR %s@'%%'", ident)]
    assert len(grants) == 2, grants
    usage, own = grants
    assert usage.startswith(f"GRANT USAGE ON *.* TO `{ident}`@`%`")
    assert usage.endswith("WITH MAX_USER_CONNECTIONS 60")
    assert (
        own == f"GRANT ALL PRIVILEGES ON `{ident.replace('_', chr(92) + '_')}`.* TO `{ident}`@`%`"
    )
    assert query(url, "SELECT @@max_user_connections") == [(60,)]


def test_connections_beyond_the_plan_are_refused(
    provisioner: MysqlProvisioner, addon_name: Name
) -> None:
    url = provisioner.provision(addon_name(), "mini")["URL"]
    with ExitStack() as stack:
        for _ in range(10):
            stack.enter_context(connect(url))
        with pytest.raises(pymysql.err.OperationalError) as refused:
            connect(url).close()
    assert error_code(refused) == USER_LIMIT_REACHED


def test_a_user_reaches_only_its_own_database(
    provisioner: MysqlProvisioner, addon_name: Name
) -> None:
    mine, other = addon_name(), addon_name()
    url = provisioner.provision(mine, "mini")["URL"]
    other_url = provisioner.provision(other, "mini")["URL"]
    query(other_url, "CREATE TABLE secrets (v TEXT)")
    query(other_url, "INSERT INTO secrets VALUES ('theirs')")
    theirs = database_name(other)

    for database in (theirs, "mysql", "test"):
        with pytest.raises(pymysql.err.OperationalError) as denied:
            connect(url, database).close()
        assert error_code(denied) == DB_ACCESS_DENIED
    with pytest.raises(pymysql.err.OperationalError) as denied:
        query(url, f"SELECT * FROM {quote_identifier(theirs)}.secrets")  # noqa: S608
    assert error_code(denied) == TABLE_ACCESS_DENIED
    # Nor the other way round, with the other add-on's own credentials.
    with pytest.raises(pymysql.err.OperationalError) as denied:
        connect(other_url, database_name(mine)).close()
    assert error_code(denied) == DB_ACCESS_DENIED

    shown = {row[0] for row in query(url, "SHOW DATABASES")}
    assert shown == {"information_schema", database_name(mine)}


def test_underscores_in_the_grant_are_not_wildcards(
    provisioner: MysqlProvisioner, addon_name: Name
) -> None:
    # kapal_test_x_ab as a GRANT pattern would also match kapal_test_xyab.
    stem = f"test-{secrets.token_hex(4)}"
    url = provisioner.provision(addon_name(f"{stem}-ab"), "mini")["URL"]
    lookalike = database_name(addon_name(f"{stem}xab"))
    provisioner.provision(f"{stem}xab", "mini")
    with pytest.raises(pymysql.err.OperationalError) as denied:
        connect(url, lookalike).close()
    assert error_code(denied) == DB_ACCESS_DENIED
    with pytest.raises(pymysql.err.OperationalError) as denied:
        query(url, f"CREATE DATABASE `{database_name(stem)}yab`")
    assert error_code(denied) == DB_ACCESS_DENIED


def test_provisioning_again_keeps_the_data_with_a_new_password(
    provisioner: MysqlProvisioner, addon_name: Name
) -> None:
    name = addon_name()
    first = provisioner.provision(name, "mini")["URL"]
    query(first, "CREATE TABLE kept (v INT)")
    query(first, "INSERT INTO kept VALUES (7)")

    second = provisioner.provision(name, "standard-0")["URL"]
    assert second != first
    assert query(second, "SELECT v, @@max_user_connections FROM kept") == [(7, 60)]
    with pytest.raises(pymysql.err.OperationalError) as denied:
        connect(first).close()
    assert error_code(denied) == ACCESS_DENIED


def test_a_user_left_by_a_crash_is_reused(
    provisioner: MysqlProvisioner, addon_name: Name, admin_url: str
) -> None:
    name = addon_name()
    ident = database_name(name)
    query(admin_url, "CREATE USER %s@'%%' IDENTIFIED BY 'left-behind'", ident)
    url = provisioner.provision(name, "mini")["URL"]
    assert query(url, "SELECT DATABASE()") == [(ident,)]


def test_deprovision_drops_database_and_user_even_while_connected(
    provisioner: MysqlProvisioner, addon_name: Name, admin_url: str
) -> None:
    name = addon_name()
    ident = database_name(name)
    url = provisioner.provision(name, "mini")["URL"]
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (v INT)")
        cur.execute("BEGIN")
        cur.execute("INSERT INTO t VALUES (1)")  # holds locks on the table

        provisioner.deprovision(name)

        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("SELECT 1")
    assert not user_exists(admin_url, ident)
    assert not database_exists(admin_url, ident)
    with pytest.raises(pymysql.err.OperationalError) as denied:
        connect(url).close()
    assert error_code(denied) in (ACCESS_DENIED, NO_SUCH_USER)


def test_deprovision_of_nothing_succeeds(provisioner: MysqlProvisioner, addon_name: Name) -> None:
    provisioner.deprovision(addon_name())
    provisioner.deprovision(addon_name())


def test_errors_and_logs_never_show_passwords(
    addon_name: Name, admin_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    parts = urlsplit(admin_url)
    wrong = f"mysql://{parts.username}:Wr0ng-s3cret@{parts.hostname}:{parts.port or 3306}"
    with pytest.raises(ProvisionError) as failed:
        MysqlProvisioner(wrong).provision(addon_name(), "mini")
    assert "Access denied" in failed.value.message
    assert "Wr0ng-s3cret" not in failed.value.message

    closed = "mysql://root:Wr0ng-s3cret@127.0.0.1:1"
    with pytest.raises(ProvisionError) as failed:
        MysqlProvisioner(closed, connect_timeout=2).provision(addon_name(), "mini")
    assert "Can't connect" in failed.value.message
    assert "Wr0ng-s3cret" not in failed.value.message

    with caplog.at_level(logging.DEBUG):
        url = MysqlProvisioner(admin_url).provision(addon_name(), "mini")["URL"]
    password = unquote(urlsplit(url).password or "")
    assert caplog.records
    assert not [r for r in caplog.records if password in r.getMessage()]
