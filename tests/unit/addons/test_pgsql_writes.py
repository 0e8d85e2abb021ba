"""The SQL of pg:credentials:rotate and of the storage quota: identifiers quoted, never
interpolated."""

from __future__ import annotations

from kapal.addons import pgsql

WEIRD = 'x"; DROP ROLE postgres; --'
Q = '"x""; DROP ROLE postgres; --"'


def test_set_password_is_a_literal_verifier() -> None:
    text = pgsql.set_password(WEIRD, "SCRAM-SHA-256$a'b").as_string()
    assert text == f"ALTER ROLE {Q} WITH PASSWORD 'SCRAM-SHA-256$a''b'"


def test_table_writes_are_revoked_from_the_role_and_public_and_granted_to_the_role() -> None:
    tables = [("public", "items"), (WEIRD, WEIRD)]
    assert pgsql.revoke_table_writes(tables, "r").as_string() == (
        f'REVOKE INSERT, UPDATE ON TABLE "public"."items", {Q}.{Q} FROM "r", PUBLIC'
    )
    assert pgsql.grant_table_writes(tables, WEIRD).as_string() == (
        f'GRANT INSERT, UPDATE ON TABLE "public"."items", {Q}.{Q} TO {Q}'
    )


def test_schema_create_names_pg_database_owner_only_where_it_exists() -> None:
    new = pgsql.revoke_schema_create(["public", "s"], "r", database_owner_role=True)
    assert new.as_string() == (
        'REVOKE CREATE ON SCHEMA "public", "s" FROM "r", PUBLIC, "pg_database_owner"'
    )
    old = pgsql.revoke_schema_create(["public"], "r", database_owner_role=False)
    assert old.as_string() == 'REVOKE CREATE ON SCHEMA "public" FROM "r", PUBLIC'
    assert pgsql.grant_schema_create([WEIRD], "r").as_string() == (
        f'GRANT CREATE ON SCHEMA {Q} TO "r"'
    )


def test_database_create() -> None:
    assert pgsql.revoke_database_create(WEIRD, "r").as_string() == (
        f'REVOKE CREATE ON DATABASE {Q} FROM "r", PUBLIC'
    )
    assert pgsql.grant_database_create("d", WEIRD).as_string() == (
        f'GRANT CREATE ON DATABASE "d" TO {Q}'
    )
