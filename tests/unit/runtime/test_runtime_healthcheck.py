"""Reading startup checks from an unpacked slug, and one probe against a real socket."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from kapal.domain.appjson import Healthcheck
from kapal.runtime.healthcheck import probe, read_healthchecks
from kapal.runtime.slugs import SlugError

CHECKS = {"healthchecks": {"web": [{"path": "/health", "name": "ready"}]}}


def test_checks_are_read_for_their_process_type(tmp_path: Path) -> None:
    (tmp_path / "app.json").write_text(json.dumps(CHECKS))
    assert read_healthchecks(tmp_path, "web") == (Healthcheck("/health", "ready"),)
    assert read_healthchecks(tmp_path, "worker") == ()


def test_no_app_json_means_no_checks(tmp_path: Path) -> None:
    assert read_healthchecks(tmp_path, "web") == ()


def test_a_link_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.json").write_text(json.dumps(CHECKS))
    (tmp_path / "app.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(SlugError, match=r"app\.json cannot be read"):
        read_healthchecks(tmp_path, "web")


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "app.json")
    with pytest.raises(SlugError, match="not a regular file"):
        read_healthchecks(tmp_path, "web")


def test_a_wrong_entry_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "app.json").write_text('{"healthchecks": {"web": [{"path": 5}]}}')
    with pytest.raises(SlugError, match=r"app\.json healthchecks\.web\[0\]\.path: expected"):
        read_healthchecks(tmp_path, "web")


async def _answering(answer: bytes) -> tuple[asyncio.Server, int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    ("answer", "check", "problem"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", Healthcheck("/"), ""),
        (b"HTTP/1.0 200 OK\r\n\r\nall ready", Healthcheck("/", content="ready"), ""),
        (b"HTTP/1.1 503 Busy\r\n\r\n", Healthcheck("/h"), "GET /h answered 503"),
        (
            b"HTTP/1.1 200 OK\r\n\r\nnope",
            Healthcheck("/h", content="ready"),
            "GET /h answered 200 without 'ready'",
        ),
        (b"SSH-2.0-OpenSSH\r\n", Healthcheck("/h"), "GET /h answered no HTTP response"),
        (b"", Healthcheck("/h"), "GET /h answered no HTTP response"),
    ],
)
def test_a_probe_says_what_was_wrong(answer: bytes, check: Healthcheck, problem: str) -> None:
    async def scenario() -> str:
        server, port = await _answering(answer)
        async with server:
            return await probe(port, check, timeout=5)

    assert asyncio.run(scenario()) == problem


def test_a_probe_that_gets_no_answer_in_time() -> None:
    writers: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    async def scenario() -> str:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            try:
                return await probe(port, Healthcheck("/h"), timeout=0.1)
            finally:
                for writer in writers:
                    writer.close()

    assert asyncio.run(scenario()) == "GET /h got no answer within 0.1 seconds"
