"""HTTP errors: every failure leaves as ``{"error": {"code", "message", "details"?}}``.

The one place the orchestrator maps error categories to HTTP statuses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic
from quart import Quart, Response, jsonify
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from sandbox.errors import (
    AgentOSError,
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnavailableError,
    UnsupportedError,
    category_of,
    describe_invalid,
)

__all__ = ["error_response", "install_error_handlers", "status_of"]

logger = logging.getLogger("agentos.orchestrator.http")

# Category -> (HTTP status, error code).
_CATEGORY_STATUS: Mapping[type[AgentOSError], tuple[int, str]] = {
    NotFoundError: (404, "not_found"),
    AlreadyExistsError: (409, "already_exists"),
    InvalidArgumentError: (400, "invalid_argument"),
    PermissionDeniedError: (403, "permission_denied"),
    ResourceExhaustedError: (429, "resource_exhausted"),
    FailedPreconditionError: (409, "failed_precondition"),
    UnavailableError: (503, "unavailable"),
    DeadlineExceededError: (504, "deadline_exceeded"),
    UnsupportedError: (501, "unsupported"),
}


def status_of(exc: AgentOSError) -> tuple[int, str]:
    """The HTTP status and error code an AgentOS error is answered with."""
    category = category_of(exc)
    return (500, "internal") if category is None else _CATEGORY_STATUS[category]


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A JSON error response."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = [dict(d) for d in details]
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _http_code(exc: HTTPException) -> str:
    return (exc.name or "error").lower().replace(" ", "_").replace("'", "")


def install_error_handlers(app: Quart) -> None:
    """Answer every error, expected or not, with the JSON error shape."""

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return error_response(
            exc.code or 500, _http_code(exc), exc.description or exc.name, headers=headers
        )

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(exc: RequestSchemaValidationError) -> Response:
        error = exc.validation_error
        if isinstance(error, pydantic.ValidationError):
            summary, details = describe_invalid(error, whole="<body>")
            return error_response(400, "invalid_argument", f"invalid request: {summary}", details)
        return error_response(400, "invalid_argument", f"invalid request: {error}")

    @app.errorhandler(AgentOSError)
    async def agentos_error(exc: AgentOSError) -> Response:
        status, code = status_of(exc)
        details = getattr(exc, "details", ())
        return error_response(status, code, str(exc), details)

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        logger.error("unhandled error", exc_info=exc)
        return error_response(500, "internal", "internal server error")
