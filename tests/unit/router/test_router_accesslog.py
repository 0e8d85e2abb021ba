from kapal.router.accesslog import format_message, router_line
from kapal.router.codes import BAD_EXPECT, H12, H14, H27, H80


def test_info_line() -> None:
    message = format_message(
        None,
        "GET",
        "/a?b=1",
        "demo.localhost",
        "rid",
        "1.2.3.4, 127.0.0.1",
        "web.1",
        0,
        3,
        200,
        1234,
    )
    assert message == (
        'at=info method=GET path="/a?b=1" host=demo.localhost request_id=rid'
        ' fwd="1.2.3.4, 127.0.0.1" dyno=web.1 connect=0ms service=3ms status=200 bytes=1234'
        " protocol=http"
    )


def test_error_line_leaves_unknown_fields_empty() -> None:
    message = format_message(
        H14, "GET", "/", "demo.localhost", "rid", "127.0.0.1", "", None, None, 503, 845
    )
    assert message == (
        'at=error code=H14 desc="No web processes running" method=GET path="/"'
        ' host=demo.localhost request_id=rid fwd="127.0.0.1" dyno= connect= service='
        " status=503 bytes=845 protocol=http"
    )


def test_levels_and_causes() -> None:
    assert format_message(H80, "GET", "/", "h", "r", "f", "", None, None, 503, 1).startswith(
        'at=info code=H80 desc="Maintenance mode" method=GET'
    )
    assert format_message(H27, "GET", "/", "h", "r", "f", "web.1", 1, 2, 499, 0).startswith(
        'at=warning code=H27 desc="Client Request Interrupted" method=GET'
    )
    assert format_message(BAD_EXPECT, "PUT", "/", "h", "r", "f", "", None, None, 417, 1).startswith(
        'at=error code=H26 desc="Request Error" cause="unsupported expect header value" method=PUT'
    )
    assert "service=30000ms status=503" in format_message(
        H12, "GET", "/", "h", "r", "f", "web.1", 0, 30000, 503, 1
    )


def test_quotes_from_the_client_cannot_break_fields() -> None:
    message = format_message(None, "GET", '/a"b', "h", "r", '1.1.1.1" x="y', "web.1", 0, 0, 200, 0)
    assert 'path="/a%22b"' in message
    assert 'fwd="1.1.1.1%22 x=%22y"' in message


def test_router_line_is_a_kapal_router_log_line() -> None:
    line = router_line("app-1", "at=info", 1700000000.5)
    assert (line.app_id, line.source, line.dyno, line.message, line.time) == (
        "app-1",
        "kapal",
        "router",
        "at=info",
        1700000000.5,
    )
    assert line.format() == "2023-11-14T22:13:20.500000+00:00 kapal[router]: at=info"
