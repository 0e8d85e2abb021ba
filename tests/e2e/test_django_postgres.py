"""The tutorial's second half: a Postgres add-on, a Django app that migrates in its release
phase, one-off dynos with `kapal run`, and `pg:psql`."""

from __future__ import annotations

import pytest

from tests.e2e.kapal_server import KapalServer, new_user
from tests.e2e.test_tutorial import wait_for

pytestmark = pytest.mark.e2e


def test_django_with_postgres(kapal_server: KapalServer) -> None:
    bob = new_user(kapal_server, "bob")
    bob.kapal("signup", "--email", "bob@example.com", input="bob's password\n")
    repo = bob.checkout("django-hello")
    bob.kapal("create", "hello-django", cwd=repo)

    created = bob.kapal("addons:create", "kapal-postgresql", cwd=repo)
    assert "DATABASE_URL" in created.stdout + created.stderr
    url = bob.kapal("config:get", "DATABASE_URL", cwd=repo).stdout.strip()
    assert url.startswith("postgres://") and "@localhost:" in url
    assert "kapal-postgresql" in bob.kapal("addons", cwd=repo).stdout

    push = bob.git("push", "kapal", "main", cwd=repo)
    assert "Running release command" in push.stderr, push.stderr
    assert "Apply" in push.stderr or "OK" in push.stderr  # migrate's own output
    assert "deployed to Kapal" in push.stderr

    first = wait_for(lambda: (r := bob.get("hello-django", "/visits/")).status_code == 200 and r)
    second = bob.get("hello-django", "/visits/")
    assert int(second.text) == int(first.text) + 1  # rows really land in Postgres

    # A one-off dyno in the release's environment: output streamed, exit status returned.
    shown = bob.kapal("run", "python", "manage.py", "showmigrations", "--plan", cwd=repo)
    assert "[X]" in shown.stdout
    failed = bob.kapal("run", "python", "-c", "import sys; sys.exit(3)", cwd=repo, check=False)
    assert failed.returncode == 3

    psql = bob.kapal("pg:psql", "-c", "select count(*) from django_migrations", cwd=repo)
    assert "count" in psql.stdout

    logs = bob.kapal("logs", "-n", "500", cwd=repo).stdout
    assert "app[api]: Attach DATABASE" in logs
    assert "release." in logs  # the release phase's dyno wrote to the stream
