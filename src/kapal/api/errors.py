"""The one place where errors become Heroku-shaped JSON: {"id", "message"}."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from kapal.domain.errors import KapalError

log = logging.getLogger(__name__)


def error_response(status: int, id_: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="kapal"'} if status == 401 else None
    return JSONResponse({"id": id_, "message": message}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(KapalError)
    async def _kapal(_: Request, exc: KapalError) -> JSONResponse:
        return error_response(exc.status, exc.id, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "bad_request", "Request body is not valid JSON.")
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"Invalid parameter {where}: {first.get('msg', 'invalid')}."
        return error_response(422, "invalid_params", message)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        ids = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "bad_request"}
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404:
            message = "Not found."
        return error_response(exc.status_code, ids.get(exc.status_code, "bad_request"), message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The route's template, not the URL: some URLs carry a secret (sources, build output).
        route = getattr(request.scope.get("route"), "path", "?")
        log.exception("unhandled error on %s %s", request.method, route)
        return error_response(500, "internal_server_error", "Internal server error.")
