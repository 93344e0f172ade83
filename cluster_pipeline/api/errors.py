"""Errors in Mixpeek's JSON shape, one handler for all: ``{"success": false, "status": N, "error":
{"message", "type", "code", "details"}}``. The core's typed errors carry the message a person reads;
here they get their status code. Nothing unexpected leaks a traceback: it is logged, and answered 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from cluster_pipeline.core.errors import (
    AlreadyExistsError,
    ClusterPipelineError,
    ConflictError,
    ExecutionError,
    InvalidIdentifierError,
    NotFoundError,
)

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer the API itself gives (auth, limits, what it does not offer)."""

    def __init__(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers


def not_offered(feature: str) -> ApiError:
    """501 for what Mixpeek's API offers and this service does not (never 404: the route exists)."""
    return ApiError(501, f"{feature} is not offered by cluster_pipeline's API.", "NotImplemented")


def refused(field: str, why: str) -> ApiError:
    """422 for a value the service cannot honour (never silently dropped)."""
    return ApiError(422, f"{field}: {why}", "ValidationError")


# the core's errors by status; the first class an error is an instance of decides
STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (NotFoundError, 404),
    (InvalidIdentifierError, 422),
    (AlreadyExistsError, 409),
    (ConflictError, 409),
    (ValueError, 422),  # configuration, ingest, filter and history-query errors
    (ExecutionError, 503),  # Dagster could not queue or run it
    (ClusterPipelineError, 409),  # an action the execution's state refuses (cancel a finished one)
)


def error_body(status: int, message: str, kind: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"success": False, "status": status, "error": {"message": message, "type": kind, "details": details}}


def respond(
    status: int, message: str, kind: str, headers: dict[str, str] | None = None, **details: Any
) -> JSONResponse:
    return JSONResponse(error_body(status, message, kind, details or None), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return respond(error.status, error.message, error.kind, error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in item['loc'] if p != 'body') or 'body'}: {item['msg']}"
            for item in error.errors()
        ]
        return respond(422, "; ".join(problems), "ValidationError", fields=problems)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(error.status_code, "HTTPError")
        return respond(error.status_code, str(error.detail), kind)

    @app.exception_handler(Exception)
    async def any_error(_: Request, error: Exception) -> JSONResponse:
        for cls, status in STATUS_OF:
            if isinstance(error, cls):
                return respond(status, str(error), type(error).__name__)
        log.exception("unexpected error")
        return respond(500, "Internal error; the server's log has the details.", "InternalError")
