"""app.json on an app's first deploy: its config vars, add-ons and formation, applied once.

Everything is checked before anything is made (`plan_first_deploy`). Add-ons are provisioned
before the release so that its config has their URLs; config vars and the formation go into
the release itself (`Initial`), so a deploy that fails leaves none of them live, and
`undo_first_deploy` removes the add-ons it made. Later deploys never read app.json.
"""

from __future__ import annotations

import logging
import secrets
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from kapal.addons.catalog import PlanChoice, find_service, parse_plan
from kapal.addons.naming import config_var, validate_attachment_name
from kapal.build.slugs import slug_path
from kapal.domain.appjson import MAX_BYTES, AppJson, AppJsonError, Postdeploy, parse_app_json
from kapal.domain.errors import InvalidParams, KapalError
from kapal.domain.formation import display_size
from kapal.services.addons import AddonView, create_addon, destroy_addon
from kapal.services.config import MAX_CONFIG_BYTES
from kapal.services.context import Context
from kapal.services.deploy import Initial, deployed
from kapal.services.formation import Update, reset_formation
from kapal.services.releases import latest_release
from kapal.store.models import Addon, App, Attachment, Slug, User

log = logging.getLogger(__name__)

FILENAME = "app.json"


def generate_secret() -> str:
    """What `"generator": "secret"` gives: 64 hex characters."""
    return secrets.token_hex(32)


@dataclass(frozen=True)
class AddonStep:
    """An add-on app.json asks for: to create, or already on the app (`kept_as`)."""

    choice: PlanChoice
    attach_as: str | None
    kept_as: str | None = None
    provides: str | None = None  # the config var it sets, when known before it is made


@dataclass(frozen=True)
class FirstDeploy:
    """What applying app.json to this first deploy does, checked and ready to apply."""

    config: dict[str, str] = field(repr=False)  # secrets: only the names are ever shown
    generated: frozenset[str]
    already_set: tuple[str, ...]
    addons: tuple[AddonStep, ...]
    formation: tuple[Update, ...]
    postdeploy: Postdeploy | None

    @property
    def empty(self) -> bool:
        """Nothing to do: an app.json with none of the keys Kapal applies."""
        return not (
            self.config or self.already_set or self.addons or self.formation or self.postdeploy
        )

    @property
    def initial(self) -> Initial:
        return Initial(self.config, self.formation)

    def summary(self) -> list[str]:
        """Detail lines for the build output: names, never values."""
        lines = []
        if self.config:
            names = [f"{k} (generated)" if k in self.generated else k for k in self.config]
            lines.append(f"Set config vars {', '.join(names)}")
        if self.already_set:
            lines.append(f"Kept config vars already set: {', '.join(self.already_set)}")
        if self.formation:
            scaled = ", ".join(_scale_text(u) for u in self.formation)
            lines.append(f"Scaled to {scaled}")
        return lines


def _scale_text(update: Update) -> str:
    text = update.type
    if update.quantity is not None:
        text += f"@{update.quantity}"
    if update.size is not None:
        text += f":{display_size(update.size)}"
    return text


def read_from_slug(path: Path, name: str = FILENAME, limit: int = MAX_BYTES + 1) -> bytes | None:
    """A file at the root of a slug (its first `limit` bytes), or None when it has none.
    Blocking: run it in a thread."""
    with tarfile.open(path, mode="r|gz") as tar:
        for member in tar:
            if member.name.removeprefix("./") != name:
                continue
            if not member.isfile():
                raise AppJsonError(f"{name} is not a regular file.")
            file = tar.extractfile(member)
            assert file is not None
            return file.read(limit)
    return None


def plan_first_deploy(
    ctx: Context, app_id: str, slug_id: str, generate: Callable[[], str] = generate_secret
) -> FirstDeploy | None:
    """The checked app.json of this deploy; None when the app was deployed before or the slug
    has no app.json. Raises KapalError (naming the field) when it cannot be applied."""
    with ctx.store.session() as s:
        app = s.get(App, app_id)
        slug = s.get(Slug, slug_id)
        if app is None or slug is None:
            raise LookupError("app or slug vanished during the build")
        if deployed(s, app):
            return None
        release = latest_release(s, app)
        config = dict(release.config) if release else {}
        attachments = {
            name: service
            for name, service in s.execute(
                select(Attachment.name, Addon.service)
                .join(Addon, Addon.id == Attachment.addon_id)
                .where(Attachment.app_id == app.id)
            )
        }
        types = sorted(t for t in slug.process_types if t != "release")
        checksum = slug.checksum
    data = read_from_slug(slug_path(ctx.settings.slugs_dir, checksum))
    if data is None:
        return None
    manifest = parse_app_json(data)
    addons = _addons(manifest, attachments)
    provided = {step.provides for step in addons if step.provides is not None}
    env, generated, already_set = _config(manifest, config, provided, generate)
    plan = FirstDeploy(
        config=env,
        generated=generated,
        already_set=already_set,
        addons=addons,
        formation=_formation(manifest, types),
        postdeploy=manifest.postdeploy,
    )
    return None if plan.empty else plan


def _config(
    manifest: AppJson,
    current: dict[str, str],
    provided: set[str],
    generate: Callable[[], str],
) -> tuple[dict[str, str], frozenset[str], tuple[str, ...]]:
    """Vars to set (those the app does not have), which were generated, which were kept.
    `provided`: vars the add-ons set, which app.json may list as required."""
    values: dict[str, str] = {}
    generated = set()
    kept = []
    missing = []
    for var in manifest.env:
        if var.name in current:
            kept.append(var.name)
        elif var.name in provided:
            continue  # the add-on's value wins over one app.json gives
        elif var.value:
            values[var.name] = var.value
        elif var.generator == "secret":
            values[var.name] = generate()
            generated.add(var.name)
        elif var.required:
            missing.append(var.name)
    if len(missing) == 1:
        raise AppJsonError(
            f"app.json requires the config var {missing[0]}, which is not set and has no value "
            f"in app.json. Set it with `kapal config:set {missing[0]}=...` and push again."
        )
    if missing:
        example = " ".join(f"{name}=..." for name in missing)
        raise AppJsonError(
            f"app.json requires the config vars {', '.join(missing)}, which are not set and "
            f"have no value in app.json. Set them with `kapal config:set {example}` and push "
            "again."
        )
    total = sum(len(k) + len(v) for k, v in {**current, **values}.items())
    if total > MAX_CONFIG_BYTES:
        raise AppJsonError("app.json env: config vars are limited to 32 kB per app.")
    return values, frozenset(generated), tuple(kept)


def _addons(manifest: AppJson, attachments: dict[str, str]) -> tuple[AddonStep, ...]:
    """Checked add-on requests. One the app already has is kept, not made twice: the same
    service under the attachment name asked for or, without one, any such add-on not yet
    matched to an earlier request."""
    steps = []
    taken = set(attachments)  # attachment names: the app's and those planned here
    matched: set[str] = set()
    for number, request in enumerate(manifest.addons):
        where = f"app.json addons[{number}]"
        try:
            choice = parse_plan(request.plan)
            if request.attach_as is not None:
                validate_attachment_name(request.attach_as)
        except InvalidParams as exc:
            raise AppJsonError(f"{where}: {exc.message}") from None
        if request.options:
            raise AppJsonError(f"{where}.options: {choice.service.name} takes no options.")
        same = sorted(
            name
            for name, service in attachments.items()
            if find_service(service) is choice.service and name not in matched
        )
        name = request.attach_as
        primary = choice.service.primary_attachment
        if name is None and same:
            name = primary if primary in same else same[0]
        if name is not None and name in same:
            matched.add(name)
            steps.append(AddonStep(choice, name, kept_as=name, provides=config_var(name)))
            continue
        if name is not None and name in taken:
            raise AppJsonError(f"{where}.as: the attachment name {name} is taken already.")
        if name is None and primary not in taken:
            name = primary  # what create_addon names the app's first add-on of the service
        if name is not None:
            taken.add(name)
        provides = config_var(name) if name is not None else None
        steps.append(AddonStep(choice, request.attach_as, provides=provides))
    return tuple(steps)


def _formation(manifest: AppJson, types: Sequence[str]) -> tuple[Update, ...]:
    updates = []
    for process in manifest.formation:
        if process.type not in types:
            declared = ", ".join(types) or "none"
            raise AppJsonError(
                f"app.json formation.{process.type}: the app has no {process.type} process "
                f"type (it declares: {declared})."
            )
        updates.append(Update(process.type, process.quantity, process.size))
    return tuple(updates)


def provision_addons(
    ctx: Context, user: User, app_id: str, plan: FirstDeploy, say: Callable[[str], None]
) -> list[AddonView]:
    """Create the add-ons app.json asks for; on a failure, remove those made and re-raise."""
    made: list[AddonView] = []
    try:
        for step in plan.addons:
            if step.kept_as is not None:
                say(f"Kept {step.choice.requested} already attached as {config_var(step.kept_as)}")
                continue
            view = create_addon(
                ctx, user, app_id, step.choice.plan_name, attachment_name=step.attach_as
            )
            made.append(view)
            say(f"Created {step.choice.requested} as {', '.join(view.config_vars)}")
    except BaseException:
        for line in remove_addons(ctx, user, app_id, made):
            say(line)
        raise
    return made


def undo_first_deploy(
    ctx: Context, user: User, app_id: str, plan: FirstDeploy, made: Sequence[AddonView]
) -> list[str]:
    """Take back what a failed first deploy made from app.json: its add-ons, and the
    formation it set (the config vars were only in the failed release). Detail lines."""
    if plan.formation:
        reset_formation(ctx, app_id, [u.type for u in plan.formation])
    return remove_addons(ctx, user, app_id, made)


def remove_addons(ctx: Context, user: User, app_id: str, made: Sequence[AddonView]) -> list[str]:
    """Destroy add-ons made for a deploy that failed, newest first; detail lines."""
    lines = []
    for view in reversed(made):
        try:
            destroy_addon(ctx, user, app_id, view.addon.id)
            lines.append(f"Removed {view.addon.name}, made for this deploy")
        except KapalError as exc:
            log.warning("could not remove add-on %s: %s", view.addon.name, exc.message)
            lines.append(f"Could not remove {view.addon.name}: {exc.message}")
    return lines
