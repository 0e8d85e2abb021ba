"""What can go wrong talking to the API: it answered with an error, or it could not be reached."""

from __future__ import annotations


class KapalClientError(Exception):
    """Base of the client's errors."""


class KapalApiError(KapalClientError):
    """The API answered with an error body `{"id", "message"}` (or something unparseable)."""

    def __init__(self, status: int, id: str, message: str) -> None:
        super().__init__(f"{status} {id}: {message}")
        self.status = status
        self.id = id
        self.message = message


class KapalConnectionError(KapalClientError):
    """The API (or a stream URL it handed out) could not be reached."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach {url}: {reason}")
        self.url = url
        self.reason = reason
