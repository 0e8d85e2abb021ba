"""The machine's MariaDB and RabbitMQ, which the MySQL and RabbitMQ add-on tests provision on.

KAPAL_TEST_MYSQL_ADMIN_URL and KAPAL_TEST_RABBITMQ_ADMIN_URL point the tests at other servers.
A server that does not answer fails the tests with a message saying so: like the Postgres
tests, these never skip (CI runs on a machine with both servers).
"""

from __future__ import annotations

import os
import socket
import subprocess
from urllib.parse import urlsplit

import pytest

MYSQL_ADMIN_URL = "mysql://root@127.0.0.1:3306"
RABBITMQ_ADMIN_URL = "amqp://guest:guest@127.0.0.1:5672/"
RABBITMQCTL = "/usr/sbin/rabbitmqctl"


def reachable(url: str, default_port: int, what: str) -> str:
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        socket.create_connection(address, timeout=5).close()
    except OSError as exc:
        pytest.fail(f"{what} does not answer on {address[0]}:{address[1]} ({exc}); start it.")
    return url


def mysql_admin_url() -> str:
    url = os.environ.get("KAPAL_TEST_MYSQL_ADMIN_URL", MYSQL_ADMIN_URL)
    return reachable(url, 3306, "MariaDB/MySQL")


def rabbitmq_admin_url() -> str:
    url = os.environ.get("KAPAL_TEST_RABBITMQ_ADMIN_URL", RABBITMQ_ADMIN_URL)
    return reachable(url, 5672, "RabbitMQ")


def rabbitmqctl(*args: str) -> str:
    """What the server says, for checks (its list commands print one name a line)."""
    done = subprocess.run(
        [RABBITMQCTL, "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
    )
    return done.stdout
