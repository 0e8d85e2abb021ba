"""Parse an app's `app.json` (Heroku's manifest) into what Kapal applies on a first deploy:
config vars, add-ons, the formation and the postdeploy script; and, on every deploy, the
startup checks a new web dyno must pass before the router sends it requests (`healthchecks`,
in Dokku's shape: `{"healthchecks": {"web": [{"type": "startup", "path": "/health"}]}}`).

Keys Kapal does not use (`name`, `buildpacks`, `environments`, ...) are ignored, as Heroku
ignores keys it does not know; the keys it uses are checked, and an error names the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kapal.domain.errors import InvalidParams
from kapal.domain.formation import normalise_size, validate_quantity
from kapal.domain.names import validate_config_key
from kapal.domain.procfile import MAX_TYPE_LENGTH

MAX_BYTES = 100 * 1024
GENERATORS = ("secret",)
CHECK_TYPES = ("startup",)  # Dokku also has readiness and liveness checks: not (yet) Kapal's


class AppJsonError(InvalidParams):
    """An app.json that cannot be applied; the message starts with `app.json` and the field."""


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str | None = None
    required: bool = True  # Heroku's default: a var without a value must be given one
    generator: str | None = None
    description: str = ""


@dataclass(frozen=True)
class AddonRequest:
    plan: str  # `service[:plan]` as written
    attach_as: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProcessFormation:
    type: str
    quantity: int | None = None
    size: str | None = None  # canonical (`standard-1x`)


@dataclass(frozen=True)
class Postdeploy:
    command: str
    size: str | None = None


@dataclass(frozen=True)
class Healthcheck:
    """A startup check: GET `path` on the dyno's $PORT must answer 2xx (and hold `content`)
    before the dyno is up; `attempts` failed answers, `timeout` seconds each, `wait` seconds
    apart, fail its boot."""

    path: str
    name: str = ""
    attempts: int = 5
    timeout: float = 5.0
    wait: float = 1.0
    initial_delay: float = 0.0
    content: str = ""

    @property
    def label(self) -> str:
        return self.name or self.path


@dataclass(frozen=True)
class AppJson:
    env: tuple[EnvVar, ...] = ()
    addons: tuple[AddonRequest, ...] = ()
    formation: tuple[ProcessFormation, ...] = ()
    postdeploy: Postdeploy | None = None
    healthchecks: Mapping[str, tuple[Healthcheck, ...]] = field(default_factory=dict)


def parse_app_json(data: bytes) -> AppJson:
    """Read app.json's bytes; raise AppJsonError naming the field that is wrong."""
    root = _document(data)
    return AppJson(
        env=_env(root.get("env")),
        addons=_addons(root.get("addons")),
        formation=_formation(root.get("formation")),
        postdeploy=_postdeploy(root.get("scripts")),
        healthchecks=_healthchecks(root.get("healthchecks")),
    )


def parse_healthchecks(data: bytes) -> Mapping[str, tuple[Healthcheck, ...]]:
    """Only the `healthchecks` of app.json's bytes (what each new dyno needs), by process
    type; raise AppJsonError naming the field that is wrong."""
    return _healthchecks(_document(data).get("healthchecks"))


def _document(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_BYTES:
        raise AppJsonError(f"app.json is {len(data)} bytes; the limit is {MAX_BYTES // 1024} KB.")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise AppJsonError("app.json is not UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        raise AppJsonError(
            f"app.json is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    return _object(document, "app.json", "the top level")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _fail(where: str, expected: str, value: object) -> AppJsonError:
    return AppJsonError(f"app.json {where}: expected {expected}, got {_kind(value)}.")


def _object(value: object, where: str, what: str = "") -> dict[str, Any]:
    if not isinstance(value, dict):
        if what:
            raise AppJsonError(f"{where}: {what} must be a JSON object, not {_kind(value)}.")
        raise _fail(where, "an object", value)
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, "a string", value)
    return value


def _optional_string(value: object, where: str) -> str | None:
    return None if value is None else _string(value, where)


def _env(value: object) -> tuple[EnvVar, ...]:
    if value is None:
        return ()
    variables = []
    for name, spec in _object(value, "env").items():
        where = f"env.{name}"
        try:
            validate_config_key(name)
        except InvalidParams as exc:
            raise AppJsonError(f"app.json {where}: {exc.message}") from None
        if isinstance(spec, str):
            variables.append(EnvVar(name, value=spec))
            continue
        spec = _object(spec, where)
        required = spec.get("required", True)
        if not isinstance(required, bool):
            raise _fail(f"{where}.required", "true or false", required)
        generator = _optional_string(spec.get("generator"), f"{where}.generator")
        if generator is not None and generator not in GENERATORS:
            raise AppJsonError(
                f'app.json {where}.generator: {generator!r} is not supported; use "secret".'
            )
        variables.append(
            EnvVar(
                name,
                value=_optional_string(spec.get("value"), f"{where}.value"),
                required=required,
                generator=generator,
                description=_optional_string(spec.get("description"), f"{where}.description") or "",
            )
        )
    return tuple(variables)


def _addons(value: object) -> tuple[AddonRequest, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail("addons", "an array", value)
    requests = []
    for number, item in enumerate(value):
        where = f"addons[{number}]"
        if isinstance(item, str):
            plan, attach_as, options = item, None, {}
        else:
            spec = _object(item, where)
            plan = _string(spec.get("plan"), f"{where}.plan")
            attach_as = _optional_string(spec.get("as"), f"{where}.as")
            options = _object(spec.get("options", {}), f"{where}.options")
        if not plan.strip():
            raise AppJsonError(f"app.json {where}: the add-on plan is empty.")
        requests.append(AddonRequest(plan.strip(), attach_as, options))
    return tuple(requests)


def _formation(value: object) -> tuple[ProcessFormation, ...]:
    if value is None:
        return ()
    processes = []
    for type_, spec in _object(value, "formation").items():
        where = f"formation.{type_}"
        if not type_ or len(type_) > MAX_TYPE_LENGTH:
            raise AppJsonError(f"app.json {where}: not a process type name.")
        spec = _object(spec, where)
        quantity = spec.get("quantity")
        if quantity is not None:
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                raise _fail(f"{where}.quantity", "a whole number", quantity)
            try:
                validate_quantity(quantity)
            except InvalidParams as exc:
                raise AppJsonError(f"app.json {where}.quantity: {exc.message}") from None
        size = _optional_string(spec.get("size"), f"{where}.size")
        processes.append(ProcessFormation(type_, quantity, _size(size, f"{where}.size")))
    return tuple(processes)


def _size(size: str | None, where: str) -> str | None:
    if size is None:
        return None
    try:
        return normalise_size(size)
    except InvalidParams as exc:
        raise AppJsonError(f"app.json {where}: {exc.message}") from None


def _postdeploy(value: object) -> Postdeploy | None:
    if value is None:
        return None
    script = _object(value, "scripts").get("postdeploy")
    if script is None:
        return None
    if isinstance(script, str):
        command, size = script, None
    else:
        spec = _object(script, "scripts.postdeploy")
        command = _string(spec.get("command"), "scripts.postdeploy.command")
        size = _size(
            _optional_string(spec.get("size"), "scripts.postdeploy.size"),
            "scripts.postdeploy.size",
        )
    if not command.strip():
        raise AppJsonError("app.json scripts.postdeploy: the command is empty.")
    return Postdeploy(command.strip(), size)


def _healthchecks(value: object) -> dict[str, tuple[Healthcheck, ...]]:
    if value is None:
        return {}
    checks = {}
    for type_, specs in _object(value, "healthchecks").items():
        where = f"healthchecks.{type_}"
        if not type_ or len(type_) > MAX_TYPE_LENGTH:
            raise AppJsonError(f"app.json {where}: not a process type name.")
        if not isinstance(specs, list):
            raise _fail(where, "an array", specs)
        checks[type_] = tuple(_check(spec, f"{where}[{n}]") for n, spec in enumerate(specs))
    return checks


def _check(value: object, where: str) -> Healthcheck:
    spec = _object(value, where)
    kind = _string(spec.get("type", "startup"), f"{where}.type")
    if kind not in CHECK_TYPES:
        raise AppJsonError(f'app.json {where}.type: {kind!r} is not supported; use "startup".')
    path = _string(spec.get("path"), f"{where}.path")
    if not path.startswith("/") or any(c.isspace() or not c.isprintable() for c in path):
        raise AppJsonError(
            f"app.json {where}.path: expected a path starting with /, without spaces."
        )
    attempts = spec.get("attempts", 5)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 100:
        raise AppJsonError(f"app.json {where}.attempts: expected a whole number from 1 to 100.")
    return Healthcheck(
        path=path,
        name=_optional_string(spec.get("name"), f"{where}.name") or "",
        attempts=attempts,
        timeout=_seconds(spec.get("timeout", 5), f"{where}.timeout", low=0.001),
        wait=_seconds(spec.get("wait", 1), f"{where}.wait"),
        initial_delay=_seconds(spec.get("initialDelay", 0), f"{where}.initialDelay"),
        content=_optional_string(spec.get("content"), f"{where}.content") or "",
    )


def _seconds(value: object, where: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= 600:
        raise AppJsonError(f"app.json {where}: expected a number of seconds from {low:g} to 600.")
    return float(value)
