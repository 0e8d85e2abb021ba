"""The smallest useful web app: a greeting, a config var, the request's headers, and an echo
of a request body's length and SHA-256 (for load tests that send bodies)."""

import hashlib
import os

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "Hello from Kapal\n"


@app.get("/greeting")
def greeting() -> Response:
    return Response(os.environ.get("GREETING", "(no greeting)"), mimetype="text/plain")


@app.get("/headers")
def headers() -> Response:
    return jsonify(dict(request.headers))


@app.post("/echo")
def echo() -> Response:
    body = request.get_data()
    return Response(f"{len(body)} {hashlib.sha256(body).hexdigest()}", mimetype="text/plain")
