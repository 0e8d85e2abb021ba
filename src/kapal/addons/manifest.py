"""A third-party add-on provider's manifest, checked before it is stored, and the catalog
service it becomes: what an operator registers so that Kapal calls the provider through
Heroku's Add-on Partner API (kapal.addons.partner)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from kapal.addons.catalog import Plan, Service, find_service
from kapal.addons.naming import ATTACHMENT_NAME, attachment_prefix
from kapal.domain.errors import InvalidParams

PROVIDER_ID = re.compile(r"^[a-z][a-z0-9-]{2,63}$")
PLAN_NAME = re.compile(r"^[a-z0-9-]{1,64}$")  # add-on rows keep 64 characters of it
CONFIG_VAR = re.compile(r"^[A-Z][A-Z0-9_]{0,99}$")
VAR_NAME = re.compile(r"^[A-Z0-9][A-Z0-9_]*$")  # what follows the prefix: URL in ACME_URL
# Plain http only where nobody else can listen in: the password travels in every request.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
MIN_PASSWORD, MAX_PASSWORD = 8, 200
MAX_NAME = 100
MAX_DESCRIPTION = 500
MAX_URL = 2048
SLUG_LENGTH = 30  # of generated add-on names: acme-search-silent-12345 fits in 50


@dataclass(frozen=True)
class PlanSpec:
    name: str
    description: str = ""


@dataclass(frozen=True)
class Manifest:
    """A checked manifest (the password is checked on its own: it is never shown back)."""

    id: str
    name: str
    base_url: str
    plans: tuple[PlanSpec, ...]
    config_vars: tuple[str, ...] = ()


def check_manifest(
    ident: str,
    name: str | None,
    base_url: str,
    plans: Sequence[PlanSpec],
    config_vars: Sequence[str] = (),
) -> Manifest:
    """Every field checked, with a message saying which is wrong and how."""
    ident = check_id(ident)
    name = (name or ident).strip()
    if not name or len(name) > MAX_NAME:
        raise InvalidParams(f"name must be 1 to {MAX_NAME} characters long.")
    url, checked_plans = check_base_url(base_url), check_plans(plans)
    variables = check_config_vars(config_vars)
    config_prefix(ident, variables)  # they must share a prefix
    return Manifest(ident, name, url, checked_plans, variables)


def check_id(ident: str) -> str:
    if not PROVIDER_ID.match(ident):
        raise InvalidParams(
            f"Provider id {ident!r} is invalid: use 3 to 64 lowercase letters, digits and "
            "dashes, starting with a letter (it is the add-on service's name, as in "
            "kapal addons:create acme-search:test)."
        )
    if find_service(ident) is not None:
        raise InvalidParams(f"Provider id {ident!r} is the name of a built-in add-on service.")
    return ident


def check_base_url(url: str) -> str:
    """https://, or http:// on this machine; without credentials, query or fragment (the
    password is sent as Basic auth, never in the URL). Returned without a trailing slash."""
    usage = "base_url must be an https:// URL (http:// only for localhost or 127.0.0.1)"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        raise InvalidParams(f"{usage}; {url!r} is not a valid URL.") from None
    if len(url) > MAX_URL:
        raise InvalidParams(f"base_url must be at most {MAX_URL} characters long.")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParams(f"{usage}, not {url!r}.")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise InvalidParams(f"{usage}: the password must not cross the network in the clear.")
    if parts.username is not None or parts.password is not None:
        raise InvalidParams("base_url must not contain credentials: give the password apart.")
    if parts.query or parts.fragment:
        raise InvalidParams("base_url must not have a query or a fragment.")
    return url.strip().rstrip("/")


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidParams(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long.")
    if not password.isprintable():
        raise InvalidParams("password must not contain control characters.")
    return password


def check_plans(plans: Sequence[PlanSpec]) -> tuple[PlanSpec, ...]:
    """At least one; names unique. The first is the default plan."""
    if not plans:
        raise InvalidParams('plans must list at least one plan, e.g. [{"name": "test"}].')
    seen: set[str] = set()
    for plan in plans:
        if not PLAN_NAME.match(plan.name):
            raise InvalidParams(
                f"Plan name {plan.name!r} is invalid: use 1 to 64 lowercase letters, digits "
                "and dashes."
            )
        if plan.name in seen:
            raise InvalidParams(f"Plan {plan.name!r} is listed twice.")
        if len(plan.description) > MAX_DESCRIPTION:
            raise InvalidParams(
                f"The description of plan {plan.name!r} is longer than {MAX_DESCRIPTION} "
                "characters."
            )
        seen.add(plan.name)
    return tuple(plans)


def check_config_vars(names: Sequence[str]) -> tuple[str, ...]:
    for var in names:
        if not CONFIG_VAR.match(var) or "_" not in var.strip("_"):
            raise InvalidParams(
                f"Config var {var!r} is invalid: use <PREFIX>_<NAME> in uppercase letters, "
                "digits and underscores, like ACME_URL."
            )
    if len(set(names)) != len(names):
        raise InvalidParams("config_vars lists a name twice.")
    return tuple(names)


def config_prefix(ident: str, config_vars: Sequence[str]) -> str:
    """What the provider's vars begin with (Heroku's config_vars_prefix), which is also the
    name of an add-on's first attachment: ACME for ACME_URL and ACME_TOKEN; ACME_SEARCH for
    the id acme-search when no vars are declared."""
    if not config_vars:
        prefix = attachment_prefix(ident)
        if not ATTACHMENT_NAME.match(prefix) or prefix.endswith("_URL"):
            raise InvalidParams(
                f"{ident} cannot name the attachments of its add-ons ({prefix} is too long or "
                "ends in _URL): list the config_vars it sets, like ACME_URL."
            )
        return prefix
    heads = [var.split("_")[:-1] for var in config_vars]
    common: list[str] = []
    for words in zip(*heads, strict=False):
        if len(set(words)) != 1:
            break
        common.append(words[0])
    prefix = "_".join(common)
    if not ATTACHMENT_NAME.match(prefix) or prefix.endswith("_URL"):
        listed = ", ".join(config_vars)
        raise InvalidParams(
            f"config_vars must share one prefix of at most 59 characters, which names the "
            f"attachment (ACME in ACME_URL and ACME_TOKEN); {listed} do not."
        )
    return prefix


def partner_service(manifest: Manifest) -> Service:
    """The catalog service of a registered provider: its first plan is the default."""
    plans = tuple(
        Plan(p.name, connection_limit=0, description=p.description) for p in manifest.plans
    )
    return Service(
        name=manifest.id,
        human_name=manifest.name,
        slug=manifest.id[:SLUG_LENGTH].rstrip("-"),
        plans=plans,
        default_plan=plans[0].name,
        primary_attachment=config_prefix(manifest.id, manifest.config_vars),
        partner=True,
    )
