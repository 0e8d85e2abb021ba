"""The router's memory budget (issue 5: 30 MB per router process) leaves no room for libraries it
does not use; importing one again by accident costs megabytes, so it is caught here. A running
router is checked too (tests/integration/router/test_router_entrypoint.py): what it loads
lazily counts as much."""

import subprocess
import sys

HEAVY = (
    *("alembic", "mako", "uvicorn", "starlette", "fastapi", "pydantic", "jinja2", "argon2"),
    *("httpx", "click", "anyio", "cryptography"),
    # The router's store speaks the DB-API (kapal.entrypoints.router_store): SQLAlchemy is
    # 26 MB with the models; psycopg (14 MB) is imported only when the store is PostgreSQL.
    *("sqlalchemy", "psycopg"),
)


def test_the_router_imports_no_heavy_library_it_does_not_use() -> None:
    code = "import sys, kapal.entrypoints.router; print(' '.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = {name.split(".")[0] for name in result.stdout.split()}
    assert sorted(loaded.intersection(HEAVY)) == []
