"""The agent's memory budget (issue 4: 40 MB with 50 dynos) leaves no room for libraries it
does not use; importing one again by accident costs megabytes, so it is caught here."""

import subprocess
import sys

HEAVY = (
    *("alembic", "mako", "uvicorn", "starlette", "fastapi", "pydantic", "jinja2", "argon2"),
    *("httpx", "click", "anyio"),
    # The agent's store speaks the DB-API (kapal.store.dbapi): SQLAlchemy is 24 MB with the
    # models; psycopg (14 MB) is imported only when the store is PostgreSQL.
    *("sqlalchemy", "psycopg"),
)


def test_the_agent_imports_no_heavy_library_it_does_not_use() -> None:
    code = "import sys, kapal.entrypoints.agent; print(' '.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = {name.split(".")[0] for name in result.stdout.split()}
    assert sorted(loaded.intersection(HEAVY)) == []
