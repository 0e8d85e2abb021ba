"""The HTTP router: routes `NAME.<apps_domain>` to the app's web dynos, Heroku style."""

from kapal.router.accesslog import LogSink
from kapal.router.config import RouterConfig
from kapal.router.routes import AppRoute, Certificate, RouteSource, RouteTable, UpDyno
from kapal.router.server import Router, WakeHints

__all__ = [
    "AppRoute",
    "Certificate",
    "LogSink",
    "RouteSource",
    "RouteTable",
    "Router",
    "RouterConfig",
    "UpDyno",
    "WakeHints",
]
