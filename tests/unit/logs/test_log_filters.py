import pytest

from kapal.domain.logline import LogLine
from kapal.logs.filters import ANY, LogFilter


def line(dyno: str, source: str = "app") -> LogLine:
    return LogLine("app-1", source, dyno, "hello", 1.0)


def test_a_process_type_matches_its_dynos_only() -> None:
    web = LogFilter(dyno="web")
    assert web.matches(line("web.1"))
    assert web.matches(line("web.12"))
    assert not web.matches(line("worker.1"))
    assert not web.matches(line("webby.1"))
    assert not web.matches(line("router", "kapal"))


def test_a_dyno_name_matches_exactly() -> None:
    web1 = LogFilter(dyno="web.1")
    assert web1.matches(line("web.1"))
    assert not web1.matches(line("web.10"))
    assert not web1.matches(line("web.2"))


def test_router_and_api_match_their_own_lines() -> None:
    assert LogFilter(dyno="router").matches(line("router", "kapal"))
    assert not LogFilter(dyno="router").matches(line("web.1"))
    assert LogFilter(dyno="api").matches(line("api"))


def test_source_filter() -> None:
    assert LogFilter(source="app").matches(line("web.1", "app"))
    assert not LogFilter(source="app").matches(line("router", "kapal"))
    assert LogFilter(source="kapal").matches(line("router", "kapal"))


def test_heroku_is_the_platform_source() -> None:
    platform = LogFilter(source="heroku")
    assert platform.source == "kapal"
    assert platform.matches(line("web.1", "kapal"))
    assert not platform.matches(line("web.1", "app"))


def test_dyno_and_source_together() -> None:
    f = LogFilter(dyno="web", source="kapal")
    assert f.matches(line("web.1", "kapal"))
    assert not f.matches(line("web.1", "app"))
    assert not f.matches(line("router", "kapal"))


def test_empty_values_mean_any() -> None:
    assert LogFilter(dyno="", source="") == ANY
    assert ANY.matches(line("anything.9", "kapal"))


@pytest.mark.parametrize(
    ("dyno", "source", "message"),
    [(None, "syslog", "source filter 'syslog'"), ("web 1", None, "dyno filter 'web 1'")],
)
def test_bad_filters_are_rejected(dyno: str | None, source: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LogFilter(dyno=dyno, source=source)
