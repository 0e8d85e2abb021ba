"""The exception tree: every error a user can see carries a Heroku error id."""

from __future__ import annotations


class KapalError(Exception):
    """Base error with a stable Heroku Platform API id and an HTTP status."""

    id = "internal_server_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(KapalError):
    id = "bad_request"
    status = 400


class Unauthorized(KapalError):
    id = "unauthorized"
    status = 401


class Forbidden(KapalError):
    id = "forbidden"
    status = 403


class NotFound(KapalError):
    id = "not_found"
    status = 404


class Conflict(KapalError):
    id = "conflict"
    status = 409


class InvalidParams(KapalError):
    id = "invalid_params"
    status = 422
