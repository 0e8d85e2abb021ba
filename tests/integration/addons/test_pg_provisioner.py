"""The provisioner against a real server: isolation, idempotence, crash recovery."""

from __future__ import annotations

import base64
from collections.abc import Callable

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from tests.integration.addons.conftest import exists

from kapal.addons import pgsql
from kapal.addons.errors import ProvisionError
from kapal.addons.postgres import PostgresProvisioner

pytestmark = pytest.mark.timeout(120)


def with_dbname(url: str, dbname: str) -> str:
    return make_conninfo(url, dbname=dbname)


def test_provisioned_url_works_for_tables_and_rows(
    provisioner: PostgresProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    url = provisioner.provision(name, "essential-0")["URL"]
    ident = pgsql.database_name(name)
    assert url.startswith(f"postgres://{ident}:")
    assert url.endswith(f"@localhost:{provisioner.public_port}/{ident}")
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE visits (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO visits DEFAULT VALUES")
        row = conn.execute("SELECT count(*), current_user, current_database() FROM visits")
        assert row.fetchone() == (1, ident, ident)


def test_role_gets_the_plan_connection_limit_and_no_privileges(
    provisioner: PostgresProvisioner, addon_name: Callable[[], str], admin_url: str
) -> None:
    name = addon_name()
    provisioner.provision(name, "standard-0")
    with psycopg.connect(admin_url) as conn:
        row = conn.execute(
            "SELECT rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, "
            "left(rolpassword, 14) FROM pg_authid WHERE rolname = %s",
            (pgsql.database_name(name),),
        ).fetchone()
    assert row == (120, False, False, False, True, "SCRAM-SHA-256$")


def test_a_role_reaches_only_its_own_database(
    provisioner: PostgresProvisioner, addon_name: Callable[[], str]
) -> None:
    mine, other = addon_name(), addon_name()
    url = provisioner.provision(mine, "essential-0")["URL"]
    provisioner.provision(other, "essential-0")
    for database in ("postgres", "template1", pgsql.database_name(other)):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(with_dbname(url, database), connect_timeout=5).close()


def test_databases_created_later_are_closed_by_the_next_provision(
    provisioner: PostgresProvisioner, addon_name: Callable[[], str], admin_url: str
) -> None:
    first = addon_name()
    url = provisioner.provision(first, "essential-0")["URL"]
    stray = pgsql.database_name(addon_name())  # made by an operator, not through Kapal
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(pgsql.create_database(stray, "postgres"))
    provisioner.provision(addon_name(), "essential-0")
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(with_dbname(url, stray), connect_timeout=5).close()


def test_deprovision_drops_database_and_role_even_while_connected(
    provisioner: PostgresProvisioner, addon_name: Callable[[], str], admin_url: str
) -> None:
    name = addon_name()
    url = provisioner.provision(name, "essential-1")["URL"]
    ident = pgsql.database_name(name)
    app_conn = psycopg.connect(url, autocommit=True)
    try:
        app_conn.execute("SELECT 1")
        provisioner.deprovision(name)  # the app's open connection must not block this
        assert exists(admin_url, ident) == (False, False)
        with pytest.raises(psycopg.OperationalError):
            app_conn.execute("SELECT 1")
    finally:
        app_conn.close()
    provisioner.deprovision(name)  # again: nothing to do, no error
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()


def test_reprovision_after_a_crash_between_role_and_database(
    provisioner: PostgresProvisioner, addon_name: Callable[[], str], admin_url: str
) -> None:
    name = addon_name()
    ident = pgsql.database_name(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(pgsql.create_role(ident, pgsql.scram_verifier("lost"), 5))
    assert exists(admin_url, ident) == (True, False)
    url = provisioner.provision(name, "essential-0")["URL"]
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE t (x int)")
    with psycopg.connect(admin_url) as conn:
        limit = conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (ident,))
        assert limit.fetchone() == (20,)


def test_reprovision_reuses_a_database_left_without_its_owner(
    provisioner: PostgresProvisioner, addon_name: Callable[[], str], admin_url: str
) -> None:
    name = addon_name()
    ident = pgsql.database_name(name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(pgsql.create_database(ident, "postgres"))
    url = provisioner.provision(name, "essential-0")["URL"]
    with psycopg.connect(url) as conn:
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    assert owner == (ident,)


def test_provision_twice_gives_a_fresh_working_password(
    provisioner: PostgresProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    first = provisioner.provision(name, "essential-0")["URL"]
    second = provisioner.provision(name, "essential-0")["URL"]
    assert first != second
    with psycopg.connect(second) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_verifier_matches_libpq(admin_url: str) -> None:
    """libpq's own SCRAM hashing, given the same salt, yields our verifier."""
    with psycopg.connect(admin_url) as conn:
        theirs = conn.pgconn.encrypt_password(b"pencil", b"someone", b"scram-sha-256").decode()
    salt = base64.b64decode(theirs.split("$")[1].split(":")[1])
    assert pgsql.scram_verifier("pencil", salt) == theirs


def test_an_unreachable_server_is_a_provision_error(addon_name: Callable[[], str]) -> None:
    provisioner = PostgresProvisioner("postgresql://postgres@127.0.0.1:1/postgres")
    with pytest.raises(ProvisionError, match="PostgreSQL: connection failed") as err:
        provisioner.provision(addon_name(), "essential-0")
    assert err.value.status == 503


def test_public_host_is_localhost_for_a_local_server(admin_url: str) -> None:
    provisioner = PostgresProvisioner(admin_url)
    assert provisioner.public_host == "localhost"
    assert provisioner.public_port == int(conninfo_to_dict(admin_url).get("port") or 5432)
