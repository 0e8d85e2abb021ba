"""Log drains, pure: their URLs (`syslog://`, `syslog+tls://`, `https://`), their tokens, and
what goes over the wire to them: RFC 5424 messages in RFC 6587 octet-counted frames, Logplex's
HTTP request head, and Heroku's L10 and L14 lines."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import unquote, urlsplit, urlunsplit

from kapal.domain.logline import LogLine
from kapal.domain.logline import stamp as line_stamp

SCHEMES = ("syslog", "syslog+tls", "https", "http")
MAX_URL = 2048
USER_AGENT = "Kapal-Logplex/1"

# PRI = facility * 8 + severity (info, 6): app lines local7, router lines local3, the rest of
# the platform's lines local0, as Logplex writes them.
PRI_APP = 23 * 8 + 6
PRI_ROUTER = 19 * 8 + 6
PRI_PLATFORM = 16 * 8 + 6

# RFC 5424 header fields are printable ASCII without spaces, of at most these lengths.
_APP_NAME_MAX = 48
_PROCID_MAX = 128
_FIELD_CHARS = frozenset(chr(c) for c in range(33, 127))


@dataclass(frozen=True, slots=True)
class DrainUrl:
    scheme: str  # one of SCHEMES
    host: str
    port: int
    url: str  # as given, credentials included: only for delivery, never for logs

    @property
    def tls(self) -> bool:
        return self.scheme in ("syslog+tls", "https")

    @property
    def shown(self) -> str:
        """The URL with any password replaced by `***`, for log lines and error messages."""
        return redact(self.url)


def redact(url: str) -> str:
    """`url` with its password replaced by `***`; never raises, even for a malformed URL."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # such as "Invalid IPv6 URL": show no part that could be a secret
        return "(malformed URL)"
    if password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    netloc = f"{user}:***@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_drain_url(text: str) -> DrainUrl:
    """A drain URL as users type it; ValueError with a message for them when unusable."""
    url = text.strip()
    if not url:
        raise ValueError("A drain URL is required, e.g. syslog+tls://logs.example.com:6514.")
    if len(url) > MAX_URL:
        raise ValueError(f"A drain URL can be at most {MAX_URL} characters long.")
    if any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in url):
        raise ValueError("A drain URL cannot contain spaces or control characters.")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"The drain URL is not valid: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"Drain URLs start with syslog://, syslog+tls:// or https://, not {scheme or url!r}."
        )
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{redact(url)} has an invalid port.") from None
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"{redact(url)} names no host.")
    if scheme.startswith("syslog"):
        if port is None:
            raise ValueError(f"{redact(url)} needs a port, e.g. {scheme}://{host}:6514.")
        if parts.path not in ("", "/") or parts.query or parts.username:
            raise ValueError(
                f"A syslog drain is only host and port, e.g. {scheme}://{host}:{port}."
            )
    default_port = 443 if scheme == "https" else 80
    return DrainUrl(scheme, host, port or default_port, url)


def new_token() -> str:
    """The token that names an app in the lines its drains receive: `d.<uuid>`."""
    return f"d.{uuid.uuid4()}"


# What drains receive


def _stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="microseconds")


def _field(value: str, limit: int) -> str:
    """`value` as an RFC 5424 header field: printable ASCII without spaces, or "-" if empty."""
    if 0 < len(value) <= limit and value.isascii() and value.isprintable() and " " not in value:
        return value
    # The hub carries whatever dyno name a line came with; a space or non-ASCII character in
    # a header field would make receivers misread the whole message, so such characters
    # become "_" here, in the copy sent to drains only. The message is passed on as it is.
    cleaned = "".join(ch if ch in _FIELD_CHARS else "_" for ch in value[:limit])
    return cleaned or "-"


@lru_cache(maxsize=256)
def _header_fields(token: str, source: str, dyno: str) -> str:
    """HOSTNAME APP-NAME PROCID MSGID: the same for every line of a dyno to a drain."""
    return f"{_field(token, 255)} {_field(source, _APP_NAME_MAX)} {_field(dyno, _PROCID_MAX)} -"


def priority(line: LogLine) -> int:
    if line.source == "app":
        return PRI_APP
    return PRI_ROUTER if line.dyno == "router" else PRI_PLATFORM


def syslog_message(line: LogLine, token: str) -> bytes:
    """The RFC 5424 message for a line: `<PRI>1 TIMESTAMP d.<uuid> SOURCE DYNO - MESSAGE`,
    without structured data, as Logplex writes it; UTF-8, any line breaks kept."""
    try:
        stamp = line_stamp(line.time)
    except (ValueError, OverflowError, OSError):
        stamp = "-"  # RFC 5424's NILVALUE, for a time no timestamp can show
    fields = _header_fields(token, line.source, line.dyno)
    # A message may hold lone surrogates (undecodable bytes kept by an escape handler).
    message = line.message.encode("utf-8", "replace")
    return f"<{priority(line)}>1 {stamp} {fields} ".encode() + message


def octet_frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: the message's length in bytes, a space, the message."""
    return b"%d %b" % (len(message), message)


def frames(lines: Iterable[LogLine], token: str) -> bytes:
    """Lines as a syslog stream or a Logplex HTTP body: frames back to back, no separator."""
    return b"".join(octet_frame(syslog_message(line, token)) for line in lines)


def logplex_request_head(
    url: DrainUrl, token: str, frame_id: str, count: int, length: int
) -> bytes:
    """The head of the POST carrying one batch of `count` frames in `length` bytes to an HTTPS
    drain; retries of a batch carry the same `frame_id` so that receivers can drop repeats."""
    parts = urlsplit(url.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = f"[{url.host}]" if ":" in url.host else url.host
    if url.port != (443 if url.scheme == "https" else 80):
        host = f"{host}:{url.port}"
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/logplex-1",
        f"Content-Length: {length}",
        f"Logplex-Msg-Count: {count}",
        f"Logplex-Frame-Id: {frame_id}",
        f"Logplex-Drain-Token: {token}",
        f"User-Agent: {USER_AGENT}",
    ]
    if parts.username is not None:
        user = unquote(parts.username)
        password = unquote(parts.password or "")
        credentials = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        lines.append(f"Authorization: Basic {credentials}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def overflow_notice(app_id: str, dropped: int, since: float, now: float) -> LogLine:
    """Heroku's L10 line: a drain's buffer was full and lost `dropped` lines from `since`."""
    message = (
        f"Error L10 (output buffer overflow): {dropped} messages dropped since {_stamp(since)}."
    )
    return LogLine(app_id, "kapal", "logplex", message, now)


def certificate_error_notice(app_id: str, error: str, url: DrainUrl, now: float) -> LogLine:
    """Heroku's L14 line: a TLS drain's certificate failed verification."""
    error = error.replace('"', "'")
    message = f'Error L14 (certificate validation error): error="{error}" uri="{url.shown}"'
    return LogLine(app_id, "kapal", "logplex", message, now)
