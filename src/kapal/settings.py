"""Settings, built once from KAPAL_* environment variables in an entry point and passed down."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from kapal.domain.errors import KapalError
from kapal.domain.formation import parse_memory_overrides

N = TypeVar("N", int, float)


def default_data_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/kapal")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kapal"


SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text: str) -> int:
    """Bytes from `2G`, `512M`, `300K` or a plain number of bytes."""
    value = text.strip().upper().removesuffix("B")
    unit = value[-1:] if value[-1:] in SIZE_UNITS else ""
    number = value[: len(value) - len(unit)]
    if not number.isdigit() or int(number) == 0:
        raise ValueError(f"{text!r} is not a size: use bytes or a number with K, M or G")
    return int(number) * SIZE_UNITS[unit]


def at_least(name: str, value: N, least: N) -> N:
    """`value`, refused with a message naming the variable when under `least` (or NaN)."""
    if not value >= least:
        raise ValueError(f"{name} must be at least {least}, not {value}")
    return value


def short(name: str, value: str, most: int) -> str:
    """`value`, refused with a message naming the variable when longer than `most`."""
    if len(value) > most:
        raise ValueError(f"{name} must be at most {most} characters long")
    return value


def port_number(name: str, text: str) -> int:
    """A TCP port, 0 (any free one) to 65535, refused with a message naming the variable."""
    value = text.strip()
    if not value.isdigit() or int(value) > 65535:
        raise ValueError(f"{name} must be a port number from 0 to 65535, not {text!r}")
    return int(value)


def router_workers(text: str) -> int:
    """KAPAL_ROUTER_WORKERS: router processes sharing the port; empty: one per CPU, up to 4."""
    if not text.strip():
        return min(len(os.sched_getaffinity(0)), 4)
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise ValueError(f"KAPAL_ROUTER_WORKERS must be a number from 1 to 64, not {text!r}")
    return int(value)


SANDBOXES = ("bubblewrap", "unshare", "none")


def sandbox_choice(text: str) -> str | None:
    """KAPAL_SANDBOX: one of SANDBOXES, or empty for the first that works here."""
    value = text.strip().lower()
    if value and value not in SANDBOXES:
        raise ValueError(f"KAPAL_SANDBOX must be one of {', '.join(SANDBOXES)}, not {text!r}")
    return value or None


def dyno_memory(text: str) -> dict[str, int]:
    """KAPAL_DYNO_MEMORY: `eco=256,standard-2x=2048`, MB per dyno size."""
    try:
        return parse_memory_overrides(text)
    except KapalError as exc:
        raise ValueError(f"KAPAL_DYNO_MEMORY: {exc.message}") from None


def python_roots(env: Mapping[str, str], home: Path) -> tuple[Path, ...]:
    """Where pyenv and uv keep the Pythons they install for this user."""
    data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    uv_dir = env.get("UV_PYTHON_INSTALL_DIR")
    return (
        Path(env.get("PYENV_ROOT") or home / ".pyenv") / "versions",
        *([Path(uv_dir)] if uv_dir else []),
        data / "uv" / "python",
    )


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    bind: str = "127.0.0.1"
    api_port: int = 5000
    api_tls_port: int = 5443  # the API and git over HTTPS, for the official Heroku CLI
    router_port: int = 8080
    router_tls_port: int = 8443  # HTTPS for apps; 0 picks a free port (tests)
    logs_port: int = 5001
    rendezvous_port: int = 5002
    apps_domain: str = "localhost"
    database_url: str = ""
    postgres_admin_url: str = ""
    postgres_port: int = 15432
    mysql_admin_url: str = ""  # mysql://root:pw@127.0.0.1:3306; unset: Kapal's own MariaDB
    mysql_port: int = 13306  # Kapal's own MariaDB for kapal-mysql add-ons
    rabbitmq_admin_url: str = ""  # amqp://… (rabbitmqctl on this machine) or http://… (management)
    redis_server: str = "/usr/bin/redis-server"  # the binary each kapal-redis add-on runs
    build_python: str = "/usr/bin/python3"
    slug_max_bytes: int = 500 * 1024 * 1024
    build_memory: int = 2 * 1024**3  # bytes a build's processes may use together
    build_timeout: float = 15 * 60.0
    build_concurrency: int = 1
    # Where pyenv and uv keep the Pythons they installed for the platform's user.
    runtime_roots: tuple[Path, ...] = ()
    dyno_boot_timeout: float = 60.0
    stop_grace: float = 30.0
    dyno_cycle: float = 24 * 3600.0  # seconds between daily restarts (plus jitter); 0: never
    run_ttl: float = 24 * 3600.0  # seconds a one-off dyno may run; 0: no limit
    router_boot_timeout: float = 75.0  # a request waits this long for a booting web dyno (H20)
    router_request_timeout: float = 30.0  # first response byte due within this (H12)
    router_idle_timeout: float = 55.0  # no byte either way this long after the head (H15)
    # Prefixed to each router process's pid in its metrics rows: several machines' routers
    # may share one PostgreSQL store, and their pids may be the same.
    router_name: str = ""
    router_workers: int = 1  # router processes sharing the port (SO_REUSEPORT)
    sandbox: str | None = None  # bubblewrap, unshare or none; None: the first that works
    dyno_memory: dict[str, int] = field(default_factory=dict)  # MB per size, overriding
    eco_sleep_after: float = 1800.0  # seconds without a request before eco dynos sleep
    eco_quota_hours: float = 1000.0  # eco dyno hours per account per month
    log_retention_days: float = 7.0  # days an app's log lines are kept on disk; 0: no limit
    log_max_bytes: int = 100 * 2**20  # an app's log files on disk, at most; older go first
    drain_ca_file: Path | None = None  # more CA certificates drains over TLS may chain to
    operators: tuple[str, ...] = ()  # who may register add-on providers; (): the first account
    partner_timeout: float = 25.0  # seconds an add-on provider has to answer (Heroku's limit)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def port(name: str, default: int) -> int:
            return int(env.get(name, default))

        def duration(name: str, default: float) -> float:
            """A number, at least 0 (where 0 means no limit)."""
            return at_least(name, float(env.get(name, default)), 0.0)

        data_dir = Path(env.get("KAPAL_DATA_DIR") or default_data_dir()).resolve()
        return cls(
            data_dir=data_dir,
            bind=env.get("KAPAL_BIND", "127.0.0.1"),
            api_port=port("KAPAL_API_PORT", 5000),
            api_tls_port=port("KAPAL_API_TLS_PORT", 5443),
            router_port=port("KAPAL_ROUTER_PORT", 8080),
            router_tls_port=port_number(
                "KAPAL_ROUTER_TLS_PORT", env.get("KAPAL_ROUTER_TLS_PORT", "8443")
            ),
            logs_port=port("KAPAL_LOGS_PORT", 5001),
            rendezvous_port=port("KAPAL_RENDEZVOUS_PORT", 5002),
            apps_domain=env.get("KAPAL_APPS_DOMAIN", "localhost"),
            database_url=env.get("KAPAL_DATABASE_URL")
            or f"sqlite:///{data_dir / 'state' / 'kapal.db'}",
            postgres_admin_url=env.get("KAPAL_POSTGRES_ADMIN_URL", ""),
            postgres_port=port("KAPAL_POSTGRES_PORT", 15432),
            mysql_admin_url=env.get("KAPAL_MYSQL_ADMIN_URL", ""),
            mysql_port=at_least(
                "KAPAL_MYSQL_PORT",
                port_number("KAPAL_MYSQL_PORT", env.get("KAPAL_MYSQL_PORT", "13306")),
                1,  # mariadbd takes 0 as its default, 3306
            ),
            rabbitmq_admin_url=env.get("KAPAL_RABBITMQ_ADMIN_URL", ""),
            redis_server=env.get("KAPAL_REDIS_SERVER", "/usr/bin/redis-server"),
            build_python=env.get("KAPAL_BUILD_PYTHON", "/usr/bin/python3"),
            slug_max_bytes=int(env.get("KAPAL_SLUG_MAX", 500 * 1024 * 1024)),
            build_memory=at_least(
                "KAPAL_BUILD_MEMORY", parse_size(env.get("KAPAL_BUILD_MEMORY", "2G")), 64 * 2**20
            ),
            build_timeout=at_least(
                "KAPAL_BUILD_TIMEOUT", float(env.get("KAPAL_BUILD_TIMEOUT", 900)), 1
            ),
            build_concurrency=at_least(
                "KAPAL_BUILD_CONCURRENCY", int(env.get("KAPAL_BUILD_CONCURRENCY", 1)), 1
            ),
            runtime_roots=python_roots(env, Path.home()),
            dyno_boot_timeout=float(env.get("KAPAL_BOOT_TIMEOUT", 60)),
            stop_grace=float(env.get("KAPAL_STOP_GRACE", 30)),
            dyno_cycle=3600 * duration("KAPAL_DYNO_CYCLE_HOURS", 24),
            run_ttl=duration("KAPAL_RUN_TTL", 86400),
            router_boot_timeout=at_least(
                "KAPAL_ROUTER_BOOT_TIMEOUT", float(env.get("KAPAL_ROUTER_BOOT_TIMEOUT", 75)), 1.0
            ),
            router_request_timeout=at_least(
                "KAPAL_ROUTER_REQUEST_TIMEOUT",
                float(env.get("KAPAL_ROUTER_REQUEST_TIMEOUT", 30)),
                1.0,
            ),
            router_idle_timeout=at_least(
                "KAPAL_ROUTER_IDLE_TIMEOUT", float(env.get("KAPAL_ROUTER_IDLE_TIMEOUT", 55)), 1.0
            ),
            router_name=short("KAPAL_ROUTER_NAME", env.get("KAPAL_ROUTER_NAME", ""), 24),
            router_workers=router_workers(env.get("KAPAL_ROUTER_WORKERS", "")),
            sandbox=sandbox_choice(env.get("KAPAL_SANDBOX", "")),
            dyno_memory=dyno_memory(env.get("KAPAL_DYNO_MEMORY", "")),
            eco_sleep_after=at_least(
                "KAPAL_ECO_SLEEP_AFTER", float(env.get("KAPAL_ECO_SLEEP_AFTER", 1800)), 1.0
            ),
            eco_quota_hours=at_least(
                "KAPAL_ECO_QUOTA_HOURS", float(env.get("KAPAL_ECO_QUOTA_HOURS", 1000)), 0.0
            ),
            log_retention_days=at_least(
                "KAPAL_LOG_RETENTION_DAYS", float(env.get("KAPAL_LOG_RETENTION_DAYS", 7)), 0.0
            ),
            log_max_bytes=at_least(
                "KAPAL_LOG_MAX_SIZE", parse_size(env.get("KAPAL_LOG_MAX_SIZE", "100M")), 2**20
            ),
            drain_ca_file=Path(env["KAPAL_DRAIN_CA_FILE"])
            if env.get("KAPAL_DRAIN_CA_FILE")
            else None,
            operators=tuple(
                e.strip().lower() for e in env.get("KAPAL_OPERATORS", "").split(",") if e.strip()
            ),
        )

    # Public URLs, as users type them.
    @property
    def api_url(self) -> str:
        return f"http://localhost:{self.api_port}"

    @property
    def logs_url(self) -> str:
        return f"http://localhost:{self.logs_port}"

    def web_url(self, app_name: str) -> str:
        return f"http://{app_name}.{self.apps_domain}:{self.router_port}/"

    def https_web_url(self, app_name: str) -> str:
        return f"https://{app_name}.{self.apps_domain}:{self.router_tls_port}/"

    @property
    def git_host(self) -> str:
        """Where git over HTTPS is served: the Heroku CLI's HEROKU_GIT_HOST (no scheme)."""
        return f"localhost:{self.api_tls_port}"

    def git_url(self, app_name: str) -> str:
        return f"{self.api_url}/{app_name}.git"

    # Places in the data directory.
    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def agent_wake_socket(self) -> Path:
        return self.run_dir / "agent.wake"

    @property
    def router_wake_socket(self) -> Path:
        return self.run_dir / "router.wake"

    @property
    def log_socket(self) -> Path:
        return self.run_dir / "logs.sock"

    @property
    def addons_dir(self) -> Path:
        """Add-on servers Kapal runs itself (kapal-redis: one directory per add-on)."""
        return self.data_dir / "addons"

    @property
    def backups_dir(self) -> Path:
        """pg:backups dumps, private: <app id>/<backup id>.dump."""
        return self.data_dir / "backups"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def repos_dir(self) -> Path:
        return self.data_dir / "repos"

    @property
    def slugs_dir(self) -> Path:
        return self.data_dir / "slugs"

    @property
    def builds_dir(self) -> Path:
        return self.data_dir / "builds"

    @property
    def sources_dir(self) -> Path:
        return self.data_dir / "sources"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    def build_cache(self, app_id: str) -> Path:
        """An app's build cache, shared by its buildpacks (uv's own cache is in uv/)."""
        return self.cache_dir / app_id

    @property
    def runtimes_dir(self) -> Path:
        """Pythons copied from pyenv or uv installations for apps to use (readable by all)."""
        return self.data_dir / "runtimes"

    @property
    def dynos_dir(self) -> Path:
        return self.data_dir / "dynos"

    @property
    def sandbox_dir(self) -> Path:
        """Mount points and /etc files of dynos' jails (nothing secret)."""
        return self.data_dir / "sandbox"

    @property
    def instance(self) -> str:
        """Names this Kapal's machine-wide objects (cgroups) apart from another's."""
        return hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]

    @property
    def postgres_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def mysql_dir(self) -> Path:
        """Kapal's own MariaDB: my.cnf, data/, socket, pid file and error log."""
        return self.data_dir / "mysql"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def tls_dir(self) -> Path:
        """The local CA (ca.pem, for users to trust) and the certificates it signed: the
        router's, and the platform's own for localhost (kapal.router.localcerts)."""
        return self.data_dir / "tls"
