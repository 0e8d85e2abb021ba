"""`addons:upgrade` and `addons:downgrade`: an add-on moved to another plan of its service.

Registered providers are asked with the Partner API's `PUT {base_url}/{id}`; when they answer
with new config vars, every app the add-on is attached to gets them in a release. Kapal's own
services do not change plans: their plan sets a database's or server's limits when it is
made, so moving means a new add-on (and, for data, pg:copy or a dump).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import select

from kapal.addons.catalog import PlanChoice, parse_plan
from kapal.addons.errors import ProvisionError
from kapal.domain.errors import Conflict, InvalidParams, NotFound
from kapal.services.addon_providers import partner_provisioner
from kapal.services.addons import AddonView, get_addon
from kapal.services.context import Context
from kapal.services.releases import derive_release, release_base, release_event
from kapal.store.models import Addon, App, Attachment, Release, User

log = logging.getLogger(__name__)


def change_plan(ctx: Context, user: User, app_ident: str, ident: str, plan_spec: str) -> AddonView:
    """Move the add-on to `plan_spec` (`plan` or `service:plan`), with the provider's
    message, if any."""
    view = get_addon(ctx, user, app_ident, ident)
    addon, service = view.addon, view.choice.service
    target = _target(view, plan_spec)
    if not service.partner:
        raise InvalidParams(
            f"{service.name} add-ons cannot change plans: create one on "
            f"{target.plan_name} and move the data over, then destroy {addon.name}."
        )
    if addon.state != "provisioned":
        raise Conflict(f"{addon.name} is {addon.state}; try again once it is provisioned.")
    if target.plan.name == addon.plan:
        return view
    provisioner = partner_provisioner(ctx, service.name, addon.id, provider_id=addon.provider_id)
    try:
        config = provisioner.change_plan(target.plan.name)
    except ProvisionError as exc:
        raise ProvisionError(f"Could not change the plan of {addon.name}. {exc.message}") from exc
    releases = _apply(ctx, user, view, target.plan.name, config)
    for app, release in releases:
        release_event(ctx, app, release, user)
    log.info("add-on %s moved to plan %s", addon.name, target.plan.name)
    return replace(get_addon(ctx, user, app_ident, addon.id), message=provisioner.message)


def _target(view: AddonView, plan_spec: str) -> PlanChoice:
    """The plan asked for, of the add-on's own service."""
    addon = view.addon
    spec = plan_spec.strip()
    target = parse_plan(spec if ":" in spec else f"{addon.service}:{spec}", view.partners)
    if target.service is not view.choice.service:
        raise InvalidParams(
            f"{addon.name} is a {view.choice.service.name} add-on; it can only change to "
            f"another plan of {view.choice.service.name}."
        )
    return target


def _apply(
    ctx: Context, user: User, view: AddonView, plan: str, config: dict[str, str] | None
) -> list[tuple[App, Release]]:
    """One transaction: the new plan stored and, when the provider changed the config vars,
    a release of each attached app with the new ones."""
    service = view.choice.service
    with ctx.store.session() as s:
        row = s.get(Addon, view.addon.id)
        if row is None:
            raise NotFound("The add-on was destroyed while its plan was being changed.")
        row.plan = plan
        if config is None or config == row.config:
            return []
        old, row.config = row.config, dict(config)
        releases = []
        attachments = list(
            s.scalars(
                select(Attachment)
                .where(Attachment.addon_id == row.id)
                .order_by(Attachment.created_at)
            )
        )
        for app_id in dict.fromkeys(a.app_id for a in attachments):
            app = s.get(App, app_id)
            assert app is not None
            mine = [a for a in attachments if a.app_id == app_id]
            base = release_base(s, app)
            env = dict(base.config) if base else {}
            for attachment in mine:
                for var in service.attachment_vars(attachment.name, old):
                    env.pop(var, None)
                env.update(service.attachment_config(attachment.name, config))
            names = ", ".join(a.name for a in mine)
            description = f"Update {names} (@ref:{row.name})"
            release = derive_release(
                s, app, user, description, base=base, config=env, run_release_phase=False
            )
            releases.append((app, release))
    return releases
