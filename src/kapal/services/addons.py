"""Add-ons: provision a resource, attach it to its app as config vars, and take it away.

Crash safety: the add-on row is committed in state `provisioning` before the provider runs,
and the URL reaches the app's config only in the transaction that marks it `provisioned`.
A row left in `provisioning` or `deprovisioning` by a crash is finished off by
`recover_addons` (the provider calls are idempotent), or by destroying the add-on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kapal.addons.catalog import PlanChoice, Service, choice_of, parse_plan
from kapal.addons.errors import ProvisionError
from kapal.addons.naming import (
    default_attachment_name,
    validate_addon_name,
    validate_attachment_name,
)
from kapal.addons.partner import PartnerProvisioner
from kapal.addons.provider import Provisioner, provisioner_for
from kapal.domain.errors import Conflict, InvalidParams, KapalError, NotFound
from kapal.domain.names import random_addon_name
from kapal.services.access import find_app, may_use
from kapal.services.addon_providers import partner_provisioner, partner_services, partners_of
from kapal.services.context import Context
from kapal.services.releases import derive_release, release_base, release_event
from kapal.store.models import Addon, App, Attachment, Release, User, new_id

log = logging.getLogger(__name__)

NOT_FOUND = "Couldn't find that add-on."


@dataclass(frozen=True)
class AddonView:
    """An add-on with its app and attachments, detached from the session."""

    addon: Addon
    app: App  # the app that owns it
    attachments: tuple[Attachment, ...]  # to its own app and to others
    apps: Mapping[str, App] = field(default_factory=dict)  # the attachments' apps, by id
    # Its service when that is a registered provider's (the built-in catalog lacks those).
    partners: tuple[Service, ...] = ()
    message: str | None = None  # what the provider said when it was just provisioned

    def app_of(self, attachment: Attachment) -> App:
        return self.apps.get(attachment.app_id, self.app)

    @property
    def choice(self) -> PlanChoice:
        return choice_of(self.addon.service, self.addon.plan, self.partners)

    def attachment_vars(self, attachment: Attachment) -> list[str]:
        """The config vars the attachment sets on its app."""
        return self.choice.service.attachment_vars(attachment.name, self.addon.config)

    @property
    def config_vars(self) -> list[str]:
        return [var for a in self.attachments for var in self.attachment_vars(a)]


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
    """Provision `service[:plan]` for the app, set its attachment's config vars (<NAME>_URL)
    and release. `options` go to a registered provider (Kapal's own services take none)."""
    with ctx.store.snapshot() as s:
        choice = parse_plan(plan_spec, partner_services(s))
    if options and not choice.service.partner:
        raise InvalidParams(f"{choice.service.name} takes no options (got {', '.join(options)}).")
    if name:
        validate_addon_name(name)
    if attachment_name:
        validate_attachment_name(attachment_name)
    addon_id = new_id()  # known before the row: a provider is told it
    provisioner = _provisioner(ctx, choice.service, addon_id, options=options)
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
                id=addon_id,
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
        partner = provisioner if isinstance(provisioner, PartnerProvisioner) else None
        provider_id = partner.provider_id if partner else ""
        view, release = _attach(ctx, user, addon, attach_as, config, choice.service, provider_id)
    except BaseException as exc:
        _abandon(ctx, provisioner, addon)
        if isinstance(exc, IntegrityError):
            raise Conflict(f"{app.name} changed at the same moment; try again.") from None
        if isinstance(exc, ProvisionError):
            raise ProvisionError(f"Could not provision {addon.name}. {exc.message}") from exc
        raise
    release_event(ctx, view.app, release, user)
    return replace(view, message=partner.message) if partner else view


def _attach(
    ctx: Context,
    user: User,
    addon: Addon,
    attach_as: str,
    config: dict[str, str],
    service: Service,
    provider_id: str = "",
) -> tuple[AddonView, Release]:
    """One transaction: provisioned, config stored, attached, released."""
    with ctx.store.session() as s:
        row = s.get(Addon, addon.id)
        app = s.get(App, addon.app_id)
        if row is None or app is None:
            raise NotFound("The app was deleted while its add-on was being provisioned.")
        row.state = "provisioned"
        row.config = dict(config)
        row.provider_id = provider_id
        attachment = Attachment(addon_id=row.id, app_id=app.id, name=attach_as)
        s.add(attachment)
        description = f"Attach {attach_as} (@ref:{row.name})"
        setting = service.attachment_config(attach_as, config)
        release = _reconfigure(s, app, user, description, [], setting)
    partners = (service,) if service.partner else ()
    return AddonView(row, app, (attachment,), partners=partners), release


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
        apps = {a.app_id: s.get(App, a.app_id) for a in attachments}
        found = {k: v for k, v in apps.items() if v}
        views.append(AddonView(addon, app, attachments, found, partners_of(s, addon.service)))
    return views


def _attachments_named(s: Session, app: App, ident: str) -> list[Attachment]:
    """The app's attachments that `ident` names: by id, by name (`DATABASE`) or by its
    config var (`DATABASE_URL`), the `pg:psql DATABASE` style."""
    return list(
        s.scalars(
            select(Attachment)
            .where(
                Attachment.app_id == app.id,
                or_(
                    Attachment.id == ident,
                    Attachment.name.in_((ident, ident.removesuffix("_URL"))),
                ),
            )
            .order_by(Attachment.created_at)
        )
    )


def _find_addon(s: Session, app: App, ident: str) -> Addon:
    """By id or name, within the app; else by one of the app's attachments."""
    addon = s.scalar(
        select(Addon).where(Addon.app_id == app.id, or_(Addon.id == ident, Addon.name == ident))
    )
    if addon is None:
        attachment = next(iter(_attachments_named(s, app, ident)), None)
        addon = s.get(Addon, attachment.addon_id) if attachment else None
    if addon is None:
        raise NotFound(NOT_FOUND)
    return addon


def resolve_addons(
    ctx: Context,
    user: User,
    ident: str,
    app_ident: str | None = None,
    service: str | None = None,
) -> list[AddonView]:
    """Heroku's add-on resolver (`heroku addons:info DATABASE`): the add-ons the user may see
    whose id or name is `ident`, and, given an app (or `app::NAME`), those attached to it as
    `ident`; only the `service`'s when one is given. None is not found."""
    if "::" in ident:  # `app::ATTACHMENT` names its own app
        app_ident, ident = ident.split("::", 1)
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident) if app_ident else None
        found = {addon.id: addon for addon in _visible_addons(s, user, ident)}
        for attachment in _attachments_named(s, app, ident) if app else []:
            addon = s.get(Addon, attachment.addon_id)
            if addon is not None:
                found.setdefault(addon.id, addon)
        views = [v for v in _views(s, list(found.values())) if _of_service(v, service)]
    if not views:
        raise NotFound(NOT_FOUND)
    return views


def find_user_addon(ctx: Context, user: User, ident: str) -> AddonView:
    """An add-on by id or name (they are unique), if the user may use its app."""
    with ctx.store.session() as s:
        views = _views(s, _visible_addons(s, user, ident))
    if not views:
        raise NotFound(NOT_FOUND)
    return views[0]


def _visible_addons(s: Session, user: User, ident: str) -> list[Addon]:
    """The add-ons with this id or name whose app the user may use."""
    rows = s.scalars(select(Addon).where(or_(Addon.id == ident, Addon.name == ident)))
    return [a for a in rows if (owner := s.get(App, a.app_id)) and may_use(user, owner)]


def _of_service(view: AddonView, service: str | None) -> bool:
    """Whether the add-on is of `service` (by its name, an alias or id); any without one."""
    known = view.choice.service
    return service is None or service in (view.addon.service, known.name, known.id, *known.aliases)


def list_addons(ctx: Context, user: User, app_ident: str) -> list[AddonView]:
    """The app's own add-ons and those of other apps attached to it."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        attached = select(Attachment.addon_id).where(Attachment.app_id == app.id)
        rows = s.scalars(
            select(Addon)
            .where(or_(Addon.app_id == app.id, Addon.id.in_(attached)))
            .order_by(Addon.created_at)
        )
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
    """Detach from every app it is attached to (a release each, without its config var),
    deprovision, forget."""
    with ctx.store.session() as s:
        app = find_app(s, user, app_ident)
        view = _views(s, [_find_addon(s, app, ident)])[0]
        addon = view.addon
        addon.state = "deprovisioning"
        releases = []
        for app_id in dict.fromkeys(a.app_id for a in view.attachments):
            attached = s.get(App, app_id)
            assert attached is not None
            leaving = [a for a in view.attachments if a.app_id == app_id]
            names = ", ".join(a.name for a in leaving)
            description = f"Detach {names} (@ref:{addon.name})"
            releases.append((attached, _reconfigure(s, attached, user, description, leaving)))
    for attached, release in releases:
        release_event(ctx, attached, release, user)
    _deprovision(ctx, addon)
    addon.state = "deprovisioned"
    return replace(view, attachments=())


def attach_addon(
    ctx: Context, user: User, addon_ident: str, app_ident: str, name: str | None = None
) -> tuple[AddonView, Attachment]:
    """Attach an add-on (by id or name) to an app, both the user's: its URL becomes the app's
    <NAME>_URL config var in a new release."""
    if name:
        validate_attachment_name(name)
    try:
        with ctx.store.session() as s:
            addon = s.scalar(
                select(Addon).where(or_(Addon.id == addon_ident, Addon.name == addon_ident))
            )
            if addon is None:
                raise NotFound(NOT_FOUND)
            find_app(s, user, addon.app_id)  # the user may use the add-on's own app
            if addon.state != "provisioned":
                raise Conflict(f"{addon.name} is {addon.state}; try again once it is provisioned.")
            app = find_app(s, user, app_ident)
            taken = set(s.scalars(select(Attachment.name).where(Attachment.app_id == app.id)))
            service = _service(s, addon)
            attach_as = name or default_attachment_name(
                addon.service, taken, primary=service.primary_attachment
            )
            if attach_as in taken:
                raise Conflict(f"{app.name} already has an attachment named {attach_as}.")
            attachment = Attachment(addon_id=addon.id, app_id=app.id, name=attach_as)
            s.add(attachment)
            release = _reconfigure(
                s,
                app,
                user,
                f"Attach {attach_as} (@ref:{addon.name})",
                [],
                service.attachment_config(attach_as, addon.config),
            )
            view = _views(s, [addon])[0]
    except IntegrityError:
        raise Conflict("The app changed at the same moment; try again.") from None
    release_event(ctx, app, release, user)
    return view, attachment


def detach_addon(
    ctx: Context, user: User, app_ident: str | None, ident: str
) -> tuple[AddonView, Attachment]:
    """Remove one attachment from an app (by id or name within the app; by id alone without
    one): a release without its config var. An add-on's last attachment stays: destroy the
    add-on instead."""
    with ctx.store.session() as s:
        attachment = _find_attachment(s, user, app_ident, ident)
        app = find_app(s, user, attachment.app_id)
        addon = s.get(Addon, attachment.addon_id)
        assert addon is not None
        view = _views(s, [addon])[0]
        if len(view.attachments) == 1:
            raise InvalidParams(
                f"{attachment.name} is the last attachment of {addon.name}; "
                "destroy the add-on instead (kapal addons:destroy)."
            )
        description = f"Detach {attachment.name} (@ref:{addon.name})"
        release = _reconfigure(s, app, user, description, [attachment])
        remaining = tuple(a for a in view.attachments if a.id != attachment.id)
    release_event(ctx, app, release, user)
    return replace(view, attachments=remaining), attachment


def get_attachment(
    ctx: Context, user: User, app_ident: str | None, ident: str
) -> tuple[AddonView, Attachment]:
    with ctx.store.session() as s:
        attachment = _find_attachment(s, user, app_ident, ident)
        addon = s.get(Addon, attachment.addon_id)
        assert addon is not None
        return _views(s, [addon])[0], attachment


def _find_attachment(s: Session, user: User, app_ident: str | None, ident: str) -> Attachment:
    if app_ident is None:
        attachment = s.get(Attachment, ident)
        if attachment is not None:
            find_app(s, user, attachment.app_id)  # only the app's users may see it
    else:
        attachment = next(iter(_attachments_named(s, find_app(s, user, app_ident), ident)), None)
    if attachment is None:
        raise NotFound(f"Couldn't find an add-on attachment named {ident}.")
    return attachment


def _reconfigure(
    s: Session,
    app: App,
    user: User,
    description: str,
    leaving: list[Attachment],
    setting: dict[str, str] | None = None,
) -> Release:
    """A release of the app without the config vars of `leaving` (deleted) and with
    `setting`; add-on config changes skip the release phase, as on Heroku."""
    base = release_base(s, app)
    env = dict(base.config) if base else {}
    for attachment in leaving:
        addon = s.get(Addon, attachment.addon_id)
        assert addon is not None
        for var in _service(s, addon).attachment_vars(attachment.name, addon.config):
            env.pop(var, None)
        s.delete(attachment)
    env.update(setting or {})
    return derive_release(s, app, user, description, base=base, config=env, run_release_phase=False)


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
    with ctx.store.snapshot() as s:
        service = _service(s, addon)
    try:
        provisioner = _provisioner(ctx, service, addon.id, provider_id=addon.provider_id)
        provisioner.deprovision(addon.name)
    except ProvisionError as exc:
        raise ProvisionError(f"Could not deprovision {addon.name}. {exc.message}") from exc
    with ctx.store.session() as s:
        for attachment in s.scalars(select(Attachment).where(Attachment.addon_id == addon.id)):
            s.delete(attachment)
        row = s.get(Addon, addon.id)
        if row is not None:
            s.delete(row)


def _service(s: Session, addon: Addon) -> Service:
    """The add-on's service: a built-in one or a registered provider's."""
    return choice_of(addon.service, addon.plan, partners_of(s, addon.service)).service


def _provisioner(
    ctx: Context,
    service: Service,
    addon_id: str,
    *,
    options: Mapping[str, Any] | None = None,
    provider_id: str = "",
) -> Provisioner:
    """Kapal's own provisioner of the service, or a provider's for this one add-on."""
    if service.partner:
        return partner_provisioner(
            ctx, service.name, addon_id, options=options, provider_id=provider_id
        )
    return provisioner_for(ctx.settings, service)
