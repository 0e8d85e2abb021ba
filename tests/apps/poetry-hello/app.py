"""A plain WSGI app that needs python-dateutil (and so six)."""

import os
from wsgiref.simple_server import make_server

from dateutil.parser import isoparse


def app(environ, start_response):
    when = isoparse("2024-02-29T12:00:00+00:00")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"Hello from Poetry, {when:%A}\n".encode()]


if __name__ == "__main__":
    make_server("", int(os.environ["PORT"]), app).serve_forever()
