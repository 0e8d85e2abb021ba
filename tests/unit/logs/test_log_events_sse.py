from kapal.domain.logline import LogLine
from kapal.logs.events import api_event
from kapal.logs.sse import sse_comment, sse_event


class Collect:
    def __init__(self) -> None:
        self.lines: list[LogLine] = []

    def send(self, line: LogLine) -> None:
        self.lines.append(line)


def test_api_event_is_an_app_api_line() -> None:
    sink = Collect()
    api_event(sink, "app-1", "Release v3 created by user x@y", clock=lambda: 1_700_000_000.0)
    (sent,) = sink.lines
    assert sent.format() == (
        "2023-11-14T22:13:20.000000+00:00 app[api]: Release v3 created by user x@y"
    )
    assert sent.app_id == "app-1"


def test_sse_event_with_id() -> None:
    assert sse_event("hello", 7) == "id: 7\ndata: hello\n\n"


def test_sse_event_without_id_keeps_the_clients_last_id() -> None:
    assert sse_event("notice") == "data: notice\n\n"


def test_sse_event_splits_every_kind_of_line_end() -> None:
    assert sse_event("a\nb\r\nc\rd", 1) == "id: 1\ndata: a\ndata: b\ndata: c\ndata: d\n\n"


def test_sse_comment_stays_one_comment() -> None:
    assert sse_comment("keep-alive") == ": keep-alive\n\n"
    assert sse_comment("a\nb") == ": a b\n\n"
