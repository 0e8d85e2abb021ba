"""The smallest useful web app: a greeting, a config var, and the request's headers."""

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
