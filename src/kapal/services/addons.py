"""Add-ons: provision a resource, attach it to its app as config vars, and take it away.

Crash safety: the add-on row is committed in state `provisioning` before the provider runs,
and the URL reaches the app's config only in the transaction that marks it `provisioned`.
A row left in `provisioning` or `deprovisioning` by a crash is finished off by
`recover_addons` (the provider calls are idempotent), or by destroying the add-on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kapal.addons.catalog import PlanChoice, Service, choice_of, parse_plan
from kapal.addons.errors import ProvisionError
from kapal.addons.naming import (
    config_var,
    default_attachment_name,
    validate_addon_name,
    validate_attachment_name,
)
from kapal.addons.provider import Provisioner, provisioner_for
from kapal.domain.errors import Conflict, InvalidParams, KapalError, NotFound
from kapal.domain.names import random_addon_name
from kapal.services.access import find_app
from kapal.services.context import Context
from kapal.services.releases import derive_release, release_base, release_event
from kapal.store.models import Addon, App, Attachment, Release, User

log = logging.getLogger(__name__)

NOT_FOUND = "Couldn't find that add-on."


@dataclass(frozen=True)
class AddonView:
    """An add-on with its app and attachments, detached from the session."""

    addon: Addon
    app: App
    attachments: tuple[Attachment, ...]

    @property
    def choice(self) -> PlanChoice:
        return choice_of(self.addon.service, self.addon.plan)

    @property
    def config_vars(self) -> list[str]:
        return [config_var(a.name) for a in self.attachments]


def create_addon(
    ctx: Context,
    user: User,
    app_ident: str,
    plan_spec: str,
    *,
    attachment_name: str | None = None,
    name: str | None = None,
    options: dict[str, Any] | None = None,
) -> AddonView:
    """Provision `service[:plan]` for the app, set <ATTACHMENT>_URL and release."""
    choice = parse_plan(plan_spec)
    if options:
        raise InvalidParams(f"{choice.service.name} takes no options (got {', '.join(options)}).")
    if name:
        validate_addon_name(name)
    if attachment_name:
        validate_attachment_name(attachment_name)
    provisioner = provisioner_for(ctx.settings, choice.service)
    try:
        with ctx.store.session() as s:
            app = find_app(s, user, app_ident)
            taken = set(s.scalars(select(Attachment.name).where(Attachment.app_id == app.id)))
            if attachment_name and attachment_name in taken:
                raise Conflict(f"{app.name} already has an attachment named {attachment_name}.")
            attach_as = attachment_name or default_attachment_name(
                choice.requested, taken, primary=choice.service.primary_attachment
            )
            if name and s.scalar(select(Addon.id).where(Addon.name == name)) is not None:
                raise Conflict(f"Name {name} is already taken.")
            addon = Addon(
                name=name or _free_name(s, choice.service),
                app_id=app.id,
                service=choice.requested,
                plan=choice.plan.name,
                state="provisioning",
            )
            s.add(addon)
    except IntegrityError:
        raise Conflict("That add-on name was taken at the same moment; try again.") from None
    try:
        config = provisioner.provision(addon.name, choice.plan.name)
        view, release = _attach(ctx, user, addon, attach_as, config)
    except BaseException as exc:
        _abandon(ctx, provisioner, addon)
        if isinstance(exc, IntegrityError):
            raise Conflict(f"{app.name} changed at the same moment; try again.") from None
        if isinstance(exc, ProvisionError):
            raise ProvisionError(f"Could not provision {addon.name}. {exc.message}") from exc
        raise
    release_event(ctx, view.app, release, user)
    return view


def _attach(
    ctx: Context, user: User, addon: Addon, attach_as: str, config: dict[str, str]
) -> tuple[AddonView, Release]:
    """One transaction: provisioned, config stored, attached, released."""
    with ctx.store.session() as s:
        row = s.get(Addon, addon.id)
        app = s.get(App, addon.app_id)
        if row is None or app is None:
            raise NotFound("The app was deleted while its add-on was being provisioned.")
        row.state = "provisioned"
        row.config = dict(config)
        attachment = Attachment(addon_id=row.id, app_id=app.id, name=attach_as)
        s.add(attachment)
        base = release_base(s, app)
        env = dict(base.config) if base else {}
        env[config_var(attach_as)] = config["URL"]
        release = derive_release(
            s,
            app,
            user,
            f"Attach {attach_as} (@ref:{row.name})",
            base=base,
            config=env,
            # Heroku skips the release phase when only add-on config changes.
            run_release_phase=False,
        )
    return AddonView(row, app, (attachment,)), release


def _abandon(ctx: Context, provisioner: Provisioner, addon: Addon) -> None:
    """Undo a failed create: remove whatever the provider made, then the row."""
    try:
        provisioner.deprovision(addon.name)
    except Exception:
        # The row is removed anyway; a leftover role/database is reused or dropped
        # when an add-on of the same name is provisioned or destroyed again.
        log.warning("could not clean up after failed provisioning of %s", addon.name)
    with ctx.store.session() as s:
        row = s.get(Addon, addon.id)
        if row is not None:
            s.delete(row)


def _free_name(s: Session, service: Service) -> str:
    for _ in range(20):
        name = random_addon_name(service.slug)
        if s.scalar(select(Addon.id).where(Addon.name == name)) is None:
            return name
    raise Conflict("Could not find a free add-on name; please choose one with --name.")


def _views(s: Session, addons: list[Addon]) -> list[AddonView]:
    views = []
    for addon in addons:
        app = s.get(App, addon.app_id)
        assert app is not None
        attachments = tuple(
            s.scalars(
                select(Attachment)
                .where(Attachment.addon_id == addon.id)
                .order_by(Attachment.created_at)
            )
        )
        views.append(AddonView(addon, app, attachments))
    return views


def _find_addon(s: Session, app: App, ident: str) -> Addon:
    """By id or name, within the app."""
    addon = s.scalar(
        select(Addon).where(Addon.app_id == app.id, or_(Addon.id == ident, Addon.name == ident))
    )
    if addon is None:
        # `pg:psql DATABASE` style: an attachment name or its config var.
        attachment = s.scalar(
            select(Attachment).where(
                Attachment.app_id == app.id,
                Attachment.name.in_((ident, ident.removesuffix("_URL"))),
            )
        )
        addon = s.get(Addon, attachment.addon_id) if attachment else None
    if addon is None:
        raise NotFound(NOT_FOUND)
    return addon


def list_addons(ctx: Context, user: User, app_ident: str) -> list[AddonView]:
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        rows = s.scalars(select(Addon).where(Addon.app_id == app.id).order_by(Addon.created_at))
        return _views(s, list(rows))


def list_user_addons(ctx: Context, user: User) -> list[AddonView]:
    """Add-ons of every app the user owns."""
    with ctx.store.session() as s:
        rows = s.scalars(
            select(Addon)
            .join(App, App.id == Addon.app_id)
            .where(App.owner_id == user.id)
            .order_by(App.name, Addon.created_at)
        )
        return _views(s, list(rows))


def get_addon(ctx: Context, user: User, app_ident: str, ident: str) -> AddonView:
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        return _views(s, [_find_addon(s, app, ident)])[0]


def destroy_addon(ctx: Context, user: User, app_ident: str, ident: str) -> AddonView:
    """Detach (a release without its config vars), deprovision, forget."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        view = _views(s, [_find_addon(s, app, ident)])[0]
        addon = view.addon
        addon.state = "deprovisioning"
        release = None
        if view.attachments:
            base = release_base(s, app)
            env = dict(base.config) if base else {}
            for attachment in view.attachments:
                env.pop(config_var(attachment.name), None)
                s.delete(attachment)
            names = ", ".join(a.name for a in view.attachments)
            release = derive_release(
                s,
                app,
                user,
                f"Detach {names} (@ref:{addon.name})",
                base=base,
                config=env,
                run_release_phase=False,
            )
    if release is not None:
        release_event(ctx, app, release, user)
    _deprovision(ctx, addon)
    addon.state = "deprovisioned"
    return replace(view, attachments=())


def deprovision_app_addons(ctx: Context, app_id: str) -> None:
    """Remove every add-on of an app that is being destroyed (call before deleting it)."""
    with ctx.store.session() as s:
        rows = list(s.scalars(select(Addon).where(Addon.app_id == app_id)))
        for row in rows:
            row.state = "deprovisioning"
    for row in rows:
        _deprovision(ctx, row)


def recover_addons(ctx: Context) -> int:
    """Finish what a crash interrupted: add-ons stuck half-way are deprovisioned and
    removed (at API start, when no provisioning can be in flight). Returns how many."""
    with ctx.store.session() as s:
        stuck = list(
            s.scalars(select(Addon).where(Addon.state.in_(("provisioning", "deprovisioning"))))
        )
    for row in stuck:
        log.warning("removing add-on %s left %s by an interrupted request", row.name, row.state)
        try:
            _deprovision(ctx, row)
        except KapalError as exc:
            log.warning("add-on %s stays %s: %s", row.name, row.state, exc.message)
    return len(stuck)


def _deprovision(ctx: Context, addon: Addon) -> None:
    """Provider first, then the row: a failure leaves the row to retry with."""
    service = choice_of(addon.service, addon.plan).service
    try:
        provisioner_for(ctx.settings, service).deprovision(addon.name)
    except ProvisionError as exc:
        raise ProvisionError(f"Could not deprovision {addon.name}. {exc.message}") from exc
    with ctx.store.session() as s:
        for attachment in s.scalars(select(Attachment).where(Attachment.addon_id == addon.id)):
            s.delete(attachment)
        row = s.get(Addon, addon.id)
        if row is not None:
            s.delete(row)
