import pytest

from kapal.addons.catalog import POSTGRESQL, choice_of, find_service, known_plans, parse_plan
from kapal.domain.errors import InvalidParams


def test_a_bare_service_gets_the_default_plan() -> None:
    choice = parse_plan("kapal-postgresql")
    assert choice.service is POSTGRESQL
    assert choice.plan.name == "essential-0"
    assert choice.plan_name == "kapal-postgresql:essential-0"


@pytest.mark.parametrize(
    ("spec", "plan", "limit"),
    [
        ("kapal-postgresql:essential-0", "essential-0", 20),
        ("kapal-postgresql:essential-1", "essential-1", 40),
        ("kapal-postgresql:standard-0", "standard-0", 120),
    ],
)
def test_each_plan_has_its_connection_limit(spec: str, plan: str, limit: int) -> None:
    choice = parse_plan(spec)
    assert (choice.plan.name, choice.plan.connection_limit) == (plan, limit)


def test_heroku_name_is_an_alias_kept_as_typed() -> None:
    choice = parse_plan("heroku-postgresql:standard-0")
    assert choice.service is POSTGRESQL
    # The Heroku CLI's pg:* commands require plans named heroku-postgresql:<plan>.
    assert choice.plan_name == "heroku-postgresql:standard-0"
    assert find_service("heroku-postgresql") is POSTGRESQL


def test_unknown_service_lists_the_known_ones() -> None:
    with pytest.raises(InvalidParams) as err:
        parse_plan("kapal-mongodb:mini")
    assert "kapal-mongodb" in err.value.message
    assert "kapal-postgresql" in err.value.message


def test_unknown_plan_lists_every_known_plan() -> None:
    with pytest.raises(InvalidParams) as err:
        parse_plan("kapal-postgresql:premium-9")
    assert "premium-9" in err.value.message
    for plan in known_plans():
        assert plan in err.value.message


def test_an_empty_plan_after_the_colon_is_the_default() -> None:
    assert parse_plan("kapal-postgresql:").plan.name == "essential-0"


def test_choice_of_a_stored_row_round_trips() -> None:
    assert (
        choice_of("heroku-postgresql", "essential-1").plan_name == "heroku-postgresql:essential-1"
    )


def test_service_ids_are_stable_uuids() -> None:
    assert POSTGRESQL.id == POSTGRESQL.id
    assert len(POSTGRESQL.id) == 36


def test_plans_describe_what_they_allow() -> None:
    from kapal.addons.catalog import MYSQL, RABBITMQ, REDIS, plan_description

    essential_0 = POSTGRESQL.plan("essential-0")
    assert essential_0 is not None
    assert plan_description(essential_0) == "20 connections, 1 GB storage"
    mini = REDIS.plan("mini")
    assert mini is not None
    assert plan_description(mini) == "20 connections, 25 MB memory, not persisted"
    premium = REDIS.plan("premium-0")
    assert premium is not None and plan_description(premium).endswith("persisted (AOF)")
    assert [s.primary_attachment for s in (POSTGRESQL, REDIS, MYSQL, RABBITMQ)] == [
        "DATABASE",
        "REDIS",
        "MYSQL",
        "AMQP",
    ]
    assert find_service("heroku-redis") is REDIS
