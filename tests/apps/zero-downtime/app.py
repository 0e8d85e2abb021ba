"""A web app that is not ready at once: for its first READY_AFTER seconds every path answers
503, so a dyno routed before its startup check (app.json) passed would fail requests. It
keeps keep-alive connections (gthread), POST /echo reads a body and GET /slow takes two seconds.

The Procfile preloads the app (gunicorn --preload): the clock starts once per dyno, not once
per worker ($WEB_CONCURRENCY of them), as the startup check probes only one of them."""

import hashlib
import os
import time
from pathlib import Path

from flask import Flask, Response, request

app = Flask(__name__)
STARTED = time.monotonic()
READY_AFTER = float(os.environ.get("READY_AFTER", "0.5"))
VERSION = Path(__file__).with_name("version.txt").read_text().strip()


@app.before_request
def warming_up() -> Response | None:
    if time.monotonic() - STARTED < READY_AFTER:
        return Response("warming up\n", status=503, mimetype="text/plain")
    return None


@app.get("/")
def index() -> str:
    return "Hello from Kapal\n"


@app.get("/health")
def health() -> str:
    return "ready\n"


@app.get("/version")
def version() -> Response:
    return Response(VERSION, mimetype="text/plain")


@app.get("/greeting")
def greeting() -> Response:
    return Response(os.environ.get("GREETING", "(no greeting)"), mimetype="text/plain")


@app.get("/slow")
def slow() -> Response:
    """A request still in flight when its dyno is told to stop: it must be finished."""
    time.sleep(2.0)  # longer than a stopping dyno is still routed (1 s)
    return Response("slow\n", mimetype="text/plain")


@app.post("/echo")
def echo() -> Response:
    body = request.get_data()
    return Response(f"{len(body)} {hashlib.sha256(body).hexdigest()}", mimetype="text/plain")
