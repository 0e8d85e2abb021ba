import pytest
from hypothesis import given
from hypothesis import strategies as st

from kapal.domain.drains import new_token, parse_drain_url, redact


def test_syslog_and_https_urls() -> None:
    tls = parse_drain_url(" syslog+tls://Logs.Example.com:6514 ")
    assert (tls.scheme, tls.host, tls.port, tls.tls) == (
        "syslog+tls",
        "logs.example.com",
        6514,
        True,
    )
    plain = parse_drain_url("syslog://10.0.0.1:514")
    assert (plain.scheme, plain.port, plain.tls) == ("syslog", 514, False)
    https = parse_drain_url("https://user:pw@logs.example.com/drain")
    assert (https.port, https.tls, https.url) == (
        443,
        True,
        "https://user:pw@logs.example.com/drain",
    )
    assert https.shown == "https://user:***@logs.example.com/drain"
    assert parse_drain_url("http://127.0.0.1/x").port == 80


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "is required"),
        ("ftp://x:1", "start with syslog://"),
        ("syslog://logs.example.com", "needs a port"),
        ("syslog://logs.example.com:99999", "invalid port"),
        ("syslog://logs.example.com:514/path", "only host and port"),
        ("syslog+tls://user:pw@logs.example.com:514", "only host and port"),
        ("https:///x", "names no host"),
        ("https://[::1/x", "not valid"),
        ("https://logs.example.com/a b", "spaces"),
        ("https://x/" + "a" * 2048, "at most"),
    ],
)
def test_unusable_urls_say_why(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_drain_url(url)


def test_error_messages_never_show_the_password() -> None:
    with pytest.raises(ValueError) as caught:
        parse_drain_url("https://user:hunter2@logs.example.com:0x/x")
    assert "hunter2" not in str(caught.value)
    assert "user:***@" in str(caught.value)


def test_redact_keeps_everything_but_the_password() -> None:
    assert redact("https://u:p@h:8443/p?q=1") == "https://u:***@h:8443/p?q=1"
    assert redact("https://u:p@ss@h/") == "https://u:***@h/"
    assert redact("https://u@h/") == "https://u@h/"
    assert redact("https://u:p@[::1") == "(malformed URL)"


@given(st.text(max_size=40))
def test_redact_never_raises_nor_shows_a_password(password: str) -> None:
    secret = "S3CR3T" + password.replace("@", "").replace("/", "").replace("#", "").replace("?", "")
    shown = redact(f"https://user:{secret}@logs.example.com/x")
    assert secret not in shown


def test_tokens_are_drain_tokens() -> None:
    token = new_token()
    assert token.startswith("d.") and len(token) == 38 and token != new_token()
