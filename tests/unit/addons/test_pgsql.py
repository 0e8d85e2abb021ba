import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.addons import pgsql

WEIRD = 'x"; DROP ROLE postgres; --'


def quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def test_database_name_is_prefixed_and_unquoted_friendly() -> None:
    assert pgsql.database_name("postgresql-silent-12345") == "kapal_postgresql_silent_12345"
    # An add-on called `postgres` must never become the admin role.
    assert pgsql.database_name("postgres") == "kapal_postgres"


@pytest.mark.parametrize("name", [WEIRD, "A", "x", "db_1", "-db", "a" * 57])
def test_database_name_rejects_anything_but_addon_names(name: str) -> None:
    with pytest.raises(ValueError, match="not a valid add-on name"):
        pgsql.database_name(name)


def test_url_uses_postgres_scheme_and_escapes_every_part() -> None:
    url = pgsql.database_url("u@x", "p/w:d", "localhost", 15432, "d b")
    assert url == "postgres://u%40x:p%2Fw%3Ad@localhost:15432/d%20b"


def test_url_for_plain_names() -> None:
    url = pgsql.database_url("kapal_a", "secret", "localhost", 5432, "kapal_a")
    assert url == "postgres://kapal_a:secret@localhost:5432/kapal_a"


def test_identifiers_are_quoted_not_interpolated() -> None:
    statements = [
        pgsql.create_role(WEIRD, "v'x", 20),
        pgsql.alter_role(WEIRD, "v", 20),
        pgsql.create_database(WEIRD, WEIRD),
        pgsql.alter_database_owner(WEIRD, WEIRD),
        pgsql.revoke_public(WEIRD),
        pgsql.disable_login(WEIRD),
        pgsql.drop_database(WEIRD, force=True),
        pgsql.drop_role(WEIRD),
    ]
    for statement in statements:
        text = statement.as_string()
        assert quoted(WEIRD) in text
        # Once the quoted identifiers are removed no statement separator is left.
        assert ";" not in text.replace(quoted(WEIRD), "")


def test_create_role_sets_limit_and_literal_password() -> None:
    text = pgsql.create_role("r", "SCRAM-SHA-256$x'y", 40).as_string()
    assert text == (
        'CREATE ROLE "r" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION '
        "CONNECTION LIMIT 40 PASSWORD 'SCRAM-SHA-256$x''y'"
    )


def test_drop_database_force_is_optional() -> None:
    assert pgsql.drop_database("d", force=False).as_string() == 'DROP DATABASE IF EXISTS "d"'
    assert pgsql.drop_database("d", force=True).as_string().endswith(" WITH (FORCE)")


@given(
    st.text(
        alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=40,
    )
)
def test_any_identifier_stays_one_quoted_identifier(name: str) -> None:
    assert pgsql.drop_role(name).as_string() == f"DROP ROLE IF EXISTS {quoted(name)}"


def test_scram_verifier_matches_rfc_7677_keys() -> None:
    # RFC 7677's example user: password "pencil", this salt, 4096 iterations.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = pgsql.scram_verifier("pencil", salt)
    method, _, rest = verifier.partition("$")
    params, _, keys = rest.partition("$")
    assert method == "SCRAM-SHA-256"
    assert params == "4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    # The RFC's exchange: ClientProof XOR ClientSignature = ClientKey, H(ClientKey) = StoredKey.
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key
    server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    assert base64.b64encode(server_signature) == b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_scram_verifier_salts_randomly() -> None:
    assert pgsql.scram_verifier("pw") != pgsql.scram_verifier("pw")
