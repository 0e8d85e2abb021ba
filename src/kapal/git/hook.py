"""The pre-receive hook: build the pushed commit through the API and stream its output.

Run by git as `python -m kapal.git.hook` inside a push, with the pushed objects readable
(quarantined) and KAPAL_API_URL, KAPAL_TOKEN, KAPAL_APP in its environment. It talks HTTP
only. Exit 0 lets the ref move; anything else rejects the push.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from kapal.git.refs import PushRefused, deploy_target, parse_updates

ARCHIVE_TIMEOUT = 600.0
ERROR = " !     "


class HookError(Exception):
    pass


def _say(out: BinaryIO, text: str = "") -> None:
    out.write(text.encode() + b"\n")
    out.flush()


def _chunks(path: Path, size: int = 65536) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(size):
            yield chunk


def _check(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json() if response.content else None
    try:
        message = response.json()["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text.strip() or response.reason_phrase
    raise HookError(f"{response.request.method} {response.request.url.path}: {message}")


def archive(newrev: str, target: Path, env: Mapping[str, str]) -> None:
    """`git archive` of the pushed commit (readable here although still quarantined)."""
    with target.open("wb") as file:
        result = subprocess.run(
            ["git", "archive", "--format=tar.gz", newrev],
            stdout=file,
            stderr=subprocess.PIPE,
            env=dict(env),
            timeout=ARCHIVE_TIMEOUT,
            check=False,
        )
    if result.returncode != 0:
        raise HookError(f"git archive failed: {result.stderr.decode(errors='replace').strip()}")


def build(client: httpx.Client, app: str, tarball: Path, version: str, out: BinaryIO) -> int:
    """Upload the source, start a build, relay its output; the hook's exit status."""
    blob = _check(client.post("/sources"))["source_blob"]
    # The upload URL carries its own secret; the API token is not sent along with it.
    _check(
        httpx.put(
            blob["put_url"],
            content=_chunks(tarball),
            headers={"Content-Type": "application/gzip"},
            timeout=client.timeout,
        )
    )
    payload = {"source_blob": {"url": blob["get_url"], "version": version}}
    started = _check(client.post(f"/apps/{app}/builds", json=payload))
    _say(out, "Building source:")
    _say(out)
    with client.stream(
        "GET", started["output_stream_url"], timeout=httpx.Timeout(30.0, read=None)
    ) as stream:
        if not stream.is_success:
            stream.read()
            _check(stream)
        for chunk in stream.iter_raw():
            out.write(chunk)
            out.flush()
    finished = _check(client.get(f"/apps/{app}/builds/{started['id']}"))
    release = finished.get("release") or {}
    if finished["status"] == "succeeded" and release.get("status") == "succeeded":
        _say(out)
        _say(out, "Verifying deploy... done.")
        return 0
    _say(out)
    _say(out, f"{ERROR}Push rejected to {app}.")
    _say(out)
    return 1


def run(stdin_text: str, env: Mapping[str, str], out: BinaryIO) -> int:
    """The whole hook, with its inputs passed in."""
    try:
        target = deploy_target(parse_updates(stdin_text))
    except PushRefused as exc:
        _say(out, f"{ERROR}{exc.message}")
        return 1
    except ValueError as exc:
        _say(out, f"{ERROR}Push failed: {exc}")
        return 1
    api, token, app = env.get("KAPAL_API_URL"), env.get("KAPAL_TOKEN"), env.get("KAPAL_APP")
    if not (api and token and app):
        _say(out, f"{ERROR}This repository's hook was not started by Kapal; cannot deploy.")
        return 1
    git_env = {k: v for k, v in env.items() if k != "KAPAL_TOKEN"}
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.heroku+json; version=3",
        "User-Agent": "kapal-git-hook",
    }
    try:
        with tempfile.TemporaryDirectory(prefix="kapal-push-") as temp:
            tarball = Path(temp) / "source.tar.gz"
            out.write(b"Compressing source files... ")
            out.flush()
            archive(target.new, tarball, git_env)
            _say(out, "done.")
            with httpx.Client(base_url=api, headers=headers, timeout=60.0) as client:
                return build(client, app, tarball, target.new, out)
    except (HookError, httpx.HTTPError, subprocess.SubprocessError, OSError, KeyError) as exc:
        _say(out)
        _say(out, f"{ERROR}Push failed: {exc}")
        return 1


def main() -> int:
    stdin_text = sys.stdin.buffer.read().decode("utf-8", "replace")
    return run(stdin_text, os.environ, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
