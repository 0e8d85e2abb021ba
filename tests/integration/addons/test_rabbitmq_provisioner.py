"""The RabbitMQ provisioner against the machine's RabbitMQ (through rabbitmqctl): a vhost and
a user per add-on, isolation, idempotence, removal."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import pytest
from tests.integration.addons.amqp_check import Refused, open_vhost
from tests.integration.addons.servers import rabbitmq_admin_url, rabbitmqctl

from kapal.addons.rabbitmq import RabbitProvisioner, vhost_name

pytestmark = pytest.mark.timeout(120)

ACCESS_REFUSED = 403
NOT_ALLOWED = 530


@pytest.fixture
def provisioner() -> RabbitProvisioner:
    return RabbitProvisioner(rabbitmq_admin_url())


def with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path=f"/{vhost}").geturl()


def names(listing: str) -> set[str]:
    return {line.split("\t")[0] for line in listing.splitlines() if line.strip()}


def test_provisioned_url_opens_its_vhost(
    provisioner: RabbitProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    url = provisioner.provision(name, "lemur")["URL"]
    vhost = vhost_name(name)
    assert url.startswith(f"amqp://{vhost}:")
    assert url.endswith(f"@localhost:{provisioner.public_port}/{vhost}")
    open_vhost(url)


def test_a_user_opens_only_its_own_vhost(
    provisioner: RabbitProvisioner, addon_name: Callable[[], str]
) -> None:
    mine, other = addon_name(), addon_name()
    url = provisioner.provision(mine, "lemur")["URL"]
    provisioner.provision(other, "lemur")
    for vhost in (vhost_name(other), "/"):
        with pytest.raises(Refused) as refused:
            open_vhost(with_vhost(url, vhost.replace("/", "%2F")))
        assert refused.value.code == NOT_ALLOWED, refused.value


def test_the_user_has_the_plan_connection_limit_and_rights_on_its_vhost_only(
    provisioner: RabbitProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    provisioner.provision(name, "tiger")
    vhost = vhost_name(name)
    limits = rabbitmqctl("list_vhost_limits", "-p", vhost)  # JSON already
    assert json.loads(limits) == {"max-connections": 100}
    permissions = rabbitmqctl("list_user_permissions", vhost, "--formatter", "json")
    assert json.loads(permissions) == [
        {"vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
    ]
    users = json.loads(rabbitmqctl("list_users", "--formatter", "json"))
    assert {"user": vhost, "tags": []} in users


def test_provisioning_again_changes_the_password(
    provisioner: RabbitProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    first = provisioner.provision(name, "lemur")["URL"]
    second = provisioner.provision(name, "lemur")["URL"]
    assert unquote(urlsplit(first).password or "") != unquote(urlsplit(second).password or "")
    open_vhost(second)
    with pytest.raises(Refused) as refused:
        open_vhost(first)
    assert refused.value.code == ACCESS_REFUSED


def test_deprovision_removes_vhost_and_user_and_may_repeat(
    provisioner: RabbitProvisioner, addon_name: Callable[[], str]
) -> None:
    name = addon_name()
    url = provisioner.provision(name, "lemur")["URL"]
    vhost = vhost_name(name)
    assert vhost in names(rabbitmqctl("list_vhosts"))

    provisioner.deprovision(name)

    assert vhost not in names(rabbitmqctl("list_vhosts"))
    assert vhost not in names(rabbitmqctl("list_users"))
    with pytest.raises(Refused) as refused:
        open_vhost(url)
    assert refused.value.code == ACCESS_REFUSED
    provisioner.deprovision(name)
