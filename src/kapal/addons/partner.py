"""Third-party add-ons over Heroku's Add-on Partner API (v3).

Kapal calls the provider as Heroku would, with Basic auth `<provider id>:<password>`:
`POST {base_url}` provisions (the answer carries the provider's `id` for the add-on and the
`config` vars to set), `PUT {base_url}/{id}` changes the plan, `DELETE {base_url}/{id}`
deprovisions (404 and 410 mean it is gone already). Provisioning is synchronous: an answer of
202 Accepted, a provider that means to finish in the background and call back, is refused
with a message saying so. Nothing here logs or returns the password.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from kapal.addons.errors import ProvisionError
from kapal.addons.manifest import CONFIG_VAR, VAR_NAME

log = logging.getLogger(__name__)

TIMEOUT = 25.0  # Heroku's limit for a provider's answer
ACCEPT = "application/vnd.heroku-addons+json; version=3"
REGION = "local"
MAX_PROVIDER_ID = 128  # what add-on rows keep
MAX_MESSAGE = 300


@dataclass(frozen=True)
class Endpoint:
    """A registered provider: where and as whom to call it, and the vars it may set."""

    id: str
    base_url: str
    password: str = field(repr=False)
    prefix: str  # its vars are <prefix>_<NAME>: the name of an add-on's first attachment
    config_vars: tuple[str, ...] = ()  # declared by the operator; empty: any with the prefix


@dataclass(frozen=True)
class AddonRef:
    """The add-on Kapal asks about: `uuid` is its id in Kapal, `provider_id` the provider's
    (empty until the provider has answered a provision request)."""

    uuid: str
    callback_url: str
    options: Mapping[str, Any] = field(default_factory=dict)
    provider_id: str = ""


class PartnerProvisioner:
    """One add-on at a provider, behind the Provisioner protocol (provision returns the vars
    without their prefix, {"URL": ...}; deprovision removes it), plus change_plan.
    `provider_id` and `message` are learnt from the provision answer."""

    def __init__(
        self,
        endpoint: Endpoint,
        addon: AddonRef,
        *,
        timeout: float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.addon = addon
        self.timeout = timeout
        self.transport = transport
        self.provider_id = addon.provider_id
        self.message: str | None = None

    def provision(self, name: str, plan: str) -> dict[str, str]:
        """POST {base_url}; returns the config vars the provider set, without its prefix."""
        body = {
            "uuid": self.addon.uuid,
            "name": name,
            "plan": plan,
            "region": REGION,
            "callback_url": self.addon.callback_url,
            "options": dict(self.addon.options),
            # Heroku's add-on log token; Kapal has no log input for add-ons to send to.
            "log_drain_token": f"d.{self.addon.uuid}",
        }
        response = self._call("POST", self.endpoint.base_url, body, "provision")
        data = _json_object(response)
        # Known before anything else is checked, so that a failed create is cleaned up.
        self.provider_id = _provider_id(data or {})
        if response.status_code == 202:
            raise ProvisionError(
                f"{self._who} answered 202 Accepted (provisioning in the background), which "
                "Kapal does not support: the provider must provision synchronously."
            )
        if data is None:
            raise ProvisionError(
                f"{self._who} answered HTTP {response.status_code} with something that is not "
                "a JSON object."
            )
        if not self.provider_id:
            raise ProvisionError(
                f"{self._who} answered without an id for the add-on (a JSON object with an "
                f"id of at most {MAX_PROVIDER_ID} characters)."
            )
        self.message = _message(data)
        config = self._config(data.get("config"))
        log.info("provisioned add-on %s at provider %s", name, self.endpoint.id)
        return config

    def deprovision(self, name: str) -> None:
        """DELETE {base_url}/{id}; nothing to do before the provider has named the add-on."""
        if not self.provider_id:
            return
        self._call("DELETE", self._resource_url, None, "deprovision", gone_ok=True)
        log.info("deprovisioned add-on %s at provider %s", name, self.endpoint.id)

    def change_plan(self, plan: str) -> dict[str, str] | None:
        """PUT {base_url}/{id} {"plan": ...}; the new config vars when the answer has any."""
        response = self._call("PUT", self._resource_url, {"plan": plan}, "change the plan")
        data = _json_object(response) if response.content.strip() else {}
        if data is None:
            raise ProvisionError(f"{self._who} answered the plan change with no JSON object.")
        self.message = _message(data)
        return self._config(data["config"]) if data.get("config") is not None else None

    # --- the calls and their answers ------------------------------------------------------

    @property
    def _who(self) -> str:
        return f"The add-on provider {self.endpoint.id}"

    @property
    def _resource_url(self) -> str:
        return f"{self.endpoint.base_url}/{quote(self.provider_id, safe='')}"

    def _call(
        self, method: str, url: str, body: object, doing: str, *, gone_ok: bool = False
    ) -> httpx.Response:
        headers = {"Accept": ACCEPT, "User-Agent": "kapal"}
        auth = httpx.BasicAuth(self.endpoint.id, self.endpoint.password)
        try:
            with httpx.Client(
                transport=self.transport, timeout=self.timeout, follow_redirects=False
            ) as http:
                response = http.request(method, url, json=body, headers=headers, auth=auth)
        except httpx.TimeoutException:
            raise ProvisionError(
                f"{self._who} did not answer within {self.timeout:g} s when asked to {doing}."
            ) from None
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise ProvisionError(f"{self._who} could not be reached ({reason}).") from None
        if response.is_success or (gone_ok and response.status_code in (404, 410)):
            return response
        said = _message(_json_object(response) or {})
        detail = f": {said}" if said else "."
        raise ProvisionError(
            f"{self._who} refused to {doing} (HTTP {response.status_code}){detail}"
        )

    def _config(self, config: object) -> dict[str, str]:
        """Its vars as stored (without the prefix), each checked: a name the provider may
        set, a string value."""
        if config is None:
            return {}
        if not isinstance(config, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in config.items()
        ):
            raise ProvisionError(
                f"{self._who} answered with a config that is not an object of config var "
                "names to strings."
            )
        start = f"{self.endpoint.prefix}_"
        declared = self.endpoint.config_vars
        stored: dict[str, str] = {}
        for var, value in config.items():
            name = var.removeprefix(start)
            if not (CONFIG_VAR.match(var) and var.startswith(start) and VAR_NAME.match(name)):
                raise ProvisionError(
                    f"{self._who} set the config var {var[:64]!r}; its vars must be "
                    f"{start}<NAME> in uppercase letters, digits and underscores."
                )
            if declared and var not in declared:
                raise ProvisionError(
                    f"{self._who} set the config var {var}, which is not one of those "
                    f"registered for it ({', '.join(declared)})."
                )
            stored[name] = value
        return stored


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The answer's JSON object, None when it is something else."""
    try:
        data = json.loads(response.content)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _provider_id(data: Mapping[str, Any]) -> str:
    """The provider's id for the add-on; "" when it gave none that Kapal can keep."""
    ident = data.get("id")
    if isinstance(ident, bool) or not isinstance(ident, str | int):
        return ""
    text = str(ident)
    return text if len(text) <= MAX_PROVIDER_ID else ""


def _message(data: Mapping[str, Any]) -> str | None:
    """The provider's `message` for the user (Heroku shows it), on one short line."""
    message = data.get("message")
    if not isinstance(message, str) or not message.strip():
        return None
    line = " ".join(message.split())
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"
