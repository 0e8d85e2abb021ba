"""Reading API answers: errors as KapalApiError, Server-Sent Events payload lines."""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from kapal.client.errors import KapalApiError


def sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The `data:` payload lines of a Server-Sent Events stream."""
    for line in lines:
        if line.startswith("data:"):
            data = line[5:]
            yield data[1:] if data.startswith(" ") else data


def stream_error(response: httpx.Response) -> KapalApiError:
    """Like _api_error, but a plain-text body is the message as it is."""
    error = api_error(response)
    if error.id == "http_error":
        text = response.text.strip()[:500]
        error.message = text or f"The log stream failed with HTTP {response.status_code}."
    return error


def api_error(response: httpx.Response) -> KapalApiError:
    """The `{"id", "message"}` body as an exception; anything else keeps status and raw text."""
    try:
        body = response.json()
    except ValueError:  # not JSON (JSONDecodeError and UnicodeDecodeError are ValueErrors)
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return KapalApiError(response.status_code, str(body.get("id", "error")), body["message"])
    request = response.request
    text = response.text.strip()[:500]
    message = f"HTTP {response.status_code} for {request.method} {request.url}"
    return KapalApiError(
        response.status_code, "http_error", f"{message}: {text}" if text else message
    )
