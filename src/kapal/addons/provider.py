"""The provisioner protocol and the provisioner serving each add-on service."""

from __future__ import annotations

from typing import Protocol

from kapal.addons.catalog import MYSQL, POSTGRESQL, RABBITMQ, REDIS, Service
from kapal.addons.errors import ClusterError, ProvisionError
from kapal.addons.mysql import MysqlProvisioner
from kapal.addons.mysql_server import admin_url as mysql_admin_url
from kapal.addons.postgres import PostgresProvisioner
from kapal.addons.postgres_cluster import admin_url
from kapal.addons.rabbitmq import RabbitProvisioner
from kapal.addons.redis import RedisProvisioner
from kapal.settings import Settings


class Provisioner(Protocol):
    """Both calls are idempotent and safe to repeat after a crash."""

    def provision(self, name: str, plan: str) -> dict[str, str]:
        """Create the resource for add-on `name`; returns its config ({"URL": ...})."""
        ...

    def deprovision(self, name: str) -> None:
        """Remove the resource; succeeds when there is nothing to remove."""
        ...


def provisioner_for(settings: Settings, service: Service) -> Provisioner:
    if service is POSTGRESQL:
        try:
            return PostgresProvisioner(admin_url(settings))
        except ClusterError as exc:
            raise ProvisionError(str(exc)) from exc
    if service is REDIS:
        return RedisProvisioner(settings)
    if service is MYSQL:
        try:
            return MysqlProvisioner(mysql_admin_url(settings))
        except ClusterError as exc:
            raise ProvisionError(str(exc)) from exc
    if service is RABBITMQ:
        return RabbitProvisioner(settings.rabbitmq_admin_url)
    raise ValueError(f"no provisioner for {service.name}")
