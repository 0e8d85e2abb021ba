from kapal.logs.sse import sse_comment, sse_event


def test_sse_event_with_id() -> None:
    assert sse_event("hello", 7) == "id: 7\ndata: hello\n\n"


def test_sse_event_without_id_keeps_the_clients_last_id() -> None:
    assert sse_event("notice") == "data: notice\n\n"


def test_sse_event_splits_every_kind_of_line_end() -> None:
    assert sse_event("a\nb\r\nc\rd", 1) == "id: 1\ndata: a\ndata: b\ndata: c\ndata: d\n\n"


def test_sse_comment_stays_one_comment() -> None:
    assert sse_comment("keep-alive") == ": keep-alive\n\n"
    assert sse_comment("a\nb") == ": a b\n\n"
