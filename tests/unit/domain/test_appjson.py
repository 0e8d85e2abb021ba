from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.appjson import (
    MAX_BYTES,
    AddonRequest,
    AppJson,
    AppJsonError,
    EnvVar,
    Healthcheck,
    Postdeploy,
    ProcessFormation,
    parse_app_json,
    parse_healthchecks,
)
from kapal.domain.errors import InvalidParams


def parse(document: object) -> AppJson:
    return parse_app_json(json.dumps(document).encode())


def test_a_full_manifest() -> None:
    manifest = parse(
        {
            "name": "Small Sharp Tool",
            "env": {
                "GREETING": "hello",
                "SECRET_KEY": {"description": "Signs cookies.", "generator": "secret"},
                "API_TOKEN": {"description": "From the provider.", "required": True},
                "OPTIONAL": {"required": False},
                "WEB_CONCURRENCY": {"value": "5"},
            },
            "addons": [
                "kapal-postgresql",
                {"plan": "heroku-postgresql:essential-0", "as": "ANALYTICS"},
            ],
            "formation": {"web": {"quantity": 2, "size": "Standard-1X"}, "worker": {"quantity": 0}},
            "scripts": {"postdeploy": "python seed.py", "pr-predestroy": "echo bye"},
        }
    )
    assert manifest == AppJson(
        env=(
            EnvVar("GREETING", value="hello"),
            EnvVar("SECRET_KEY", generator="secret", description="Signs cookies."),
            EnvVar("API_TOKEN", description="From the provider."),
            EnvVar("OPTIONAL", required=False),
            EnvVar("WEB_CONCURRENCY", value="5"),
        ),
        addons=(
            AddonRequest("kapal-postgresql"),
            AddonRequest("heroku-postgresql:essential-0", attach_as="ANALYTICS"),
        ),
        formation=(
            ProcessFormation("web", 2, "standard-1x"),
            ProcessFormation("worker", 0, None),
        ),
        postdeploy=Postdeploy("python seed.py"),
    )


def test_required_defaults_to_true_as_on_heroku() -> None:
    (var,) = parse({"env": {"TOKEN": {"description": "needed"}}}).env
    assert var.required and var.value is None and var.generator is None


def test_unknown_keys_are_ignored() -> None:
    manifest = parse(
        {
            "buildpacks": [{"url": "heroku/python"}],
            "environments": {"test": {"scripts": {"test": "pytest"}}},
            "stack": "heroku-22",
            "env": {"A": {"value": "1", "order": 3}},
        }
    )
    assert manifest == AppJson(env=(EnvVar("A", value="1"),))


def test_postdeploy_may_be_an_object_with_a_size() -> None:
    manifest = parse({"scripts": {"postdeploy": {"command": "./seed", "size": "standard-2x"}}})
    assert manifest.postdeploy == Postdeploy("./seed", "standard-2x")


def test_an_empty_object_applies_nothing() -> None:
    assert parse({}) == AppJson()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "app.json: the top level must be a JSON object, not an array."),
        ("text", "app.json: the top level must be a JSON object, not a string."),
        ({"env": []}, "app.json env: expected an object, got an array."),
        ({"env": {"A": 5}}, "app.json env.A: expected an object, got a number."),
        ({"env": {"A": {"value": 5}}}, "app.json env.A.value: expected a string, got a number."),
        (
            {"env": {"A": {"required": "yes"}}},
            "app.json env.A.required: expected true or false, got a string.",
        ),
        ({"env": {"A": {"generator": "uuid"}}}, "app.json env.A.generator: 'uuid' is not"),
        ({"env": {"1BAD": "x"}}, "app.json env.1BAD: Config var name '1BAD' is invalid"),
        ({"env": {"MY-VAR": "x"}}, "app.json env.MY-VAR: Config var name 'MY-VAR' is invalid"),
        ({"addons": "kapal-postgresql"}, "app.json addons: expected an array, got a string."),
        ({"addons": [7]}, "app.json addons[0]: expected an object, got a number."),
        ({"addons": [{"as": "DB"}]}, "app.json addons[0].plan: expected a string, got null."),
        ({"addons": ["  "]}, "app.json addons[0]: the add-on plan is empty."),
        (
            {"addons": [{"plan": "kapal-postgresql", "options": []}]},
            "app.json addons[0].options: expected an object, got an array.",
        ),
        ({"formation": [{"process": "web"}]}, "app.json formation: expected an object"),
        (
            {"formation": {"web": {"quantity": "2"}}},
            "app.json formation.web.quantity: expected a whole number, got a string.",
        ),
        (
            {"formation": {"web": {"quantity": 1.5}}},
            "app.json formation.web.quantity: expected a whole number, got a number.",
        ),
        (
            {"formation": {"web": {"quantity": True}}},
            "app.json formation.web.quantity: expected a whole number, got a boolean.",
        ),
        (
            {"formation": {"web": {"quantity": 101}}},
            "app.json formation.web.quantity: Quantity must be between 0 and 100.",
        ),
        (
            {"formation": {"web": {"size": "huge"}}},
            "app.json formation.web.size: Unknown dyno size 'huge'.",
        ),
        ({"scripts": "seed"}, "app.json scripts: expected an object, got a string."),
        (
            {"scripts": {"postdeploy": ["seed"]}},
            "app.json scripts.postdeploy: expected an object, got an array.",
        ),
        ({"scripts": {"postdeploy": " "}}, "app.json scripts.postdeploy: the command is empty."),
        ({"healthchecks": []}, "app.json healthchecks: expected an object, got an array."),
        (
            {"healthchecks": {"web": {"path": "/"}}},
            "app.json healthchecks.web: expected an array, got an object.",
        ),
        (
            {"healthchecks": {"web": [{"type": "liveness", "path": "/"}]}},
            "app.json healthchecks.web[0].type: 'liveness' is not supported; use \"startup\".",
        ),
        (
            {"healthchecks": {"web": [{"name": "no path"}]}},
            "app.json healthchecks.web[0].path: expected a string, got null.",
        ),
        (
            {"healthchecks": {"web": [{"path": "/a b"}]}},
            "app.json healthchecks.web[0].path: expected a path starting with /",
        ),
        (
            {"healthchecks": {"web": [{"path": "/", "attempts": 0}]}},
            "app.json healthchecks.web[0].attempts: expected a whole number from 1 to 100.",
        ),
        (
            {"healthchecks": {"web": [{"path": "/", "timeout": 0}]}},
            "app.json healthchecks.web[0].timeout: expected a number of seconds from 0.001 to 600.",
        ),
        (
            {"healthchecks": {"web": [{"path": "/", "wait": "5s"}]}},
            "app.json healthchecks.web[0].wait: expected a number of seconds from 0 to 600.",
        ),
    ],
)
def test_wrong_types_name_the_field(document: object, message: str) -> None:
    with pytest.raises(AppJsonError) as caught:
        parse(document)
    assert caught.value.message.startswith(message)


def test_healthchecks_in_dokkus_shape() -> None:
    document = {
        "healthchecks": {
            "web": [
                {
                    "type": "startup",
                    "name": "web check",
                    "description": "ignored, as Dokku's port is: checks go to $PORT",
                    "path": "/health/ready",
                    "port": 8080,
                    "attempts": 3,
                    "timeout": 2,
                    "wait": 0.5,
                    "initialDelay": 1,
                    "content": "ok",
                },
                {"path": "/"},
            ]
        },
        "env": {"IGNORED_HERE": 5},  # only parse_app_json checks the rest
    }
    checks = parse_healthchecks(json.dumps(document).encode())
    assert checks == {
        "web": (
            Healthcheck("/health/ready", "web check", 3, 2.0, 0.5, 1.0, "ok"),
            Healthcheck("/"),
        )
    }
    assert checks["web"][1].label == "/"
    assert parse_healthchecks(b"{}") == {}


def test_invalid_json_says_where() -> None:
    with pytest.raises(AppJsonError) as caught:
        parse_app_json(b'{"env": {\n  "A": "1",\n}}')
    assert caught.value.message == (
        "app.json is not valid JSON: Expecting property name enclosed in double quotes "
        "(line 3, column 1)."
    )


def test_not_utf8() -> None:
    with pytest.raises(AppJsonError, match="not UTF-8"):
        parse_app_json(b'{"name": "\xff"}')


def test_more_than_100_kb_is_refused() -> None:
    padding = "x" * MAX_BYTES
    with pytest.raises(AppJsonError, match="the limit is 100 KB"):
        parse_app_json(json.dumps({"description": padding}).encode())


def test_errors_are_invalid_params() -> None:
    assert issubclass(AppJsonError, InvalidParams)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
manifests = st.dictionaries(
    st.sampled_from(["env", "addons", "formation", "scripts", "name", "healthchecks"]), json_values
)


@given(manifests)
def test_any_json_parses_or_is_refused_with_a_message(document: dict[str, object]) -> None:
    try:
        parse(document)
    except AppJsonError as exc:
        assert exc.message.startswith("app.json")
