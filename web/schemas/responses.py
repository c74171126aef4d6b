"""Error answers, and what each endpoint can answer besides success (for `responses=`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ValidationProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer: a message, or (422) a list of what is wrong where."""

    detail: str | list[ValidationProblem]


# What an endpoint can answer besides success, for `responses=` (so the OpenAPI schema
# lists every status a client can get).
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid API key"},
    503: {
        "model": ErrorBody,
        "description": "the graph store or Redis is unavailable; retry after `Retry-After` s",
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "does not exist, or is not the caller's"},
}
NO_RESULT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "the job has not succeeded (yet): no result"},
    410: {"model": ErrorBody, "description": "the result expired (RESULT_TTL_SECONDS)"},
}
BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "invalid parameters or body"},
}
BAD_BODY: dict[int | str, dict[str, Any]] = {
    **BAD_REQUEST,
    400: {"model": ErrorBody, "description": "the body could not be read (not UTF-8, say)"},
    413: {"model": ErrorBody, "description": "the body, or the batch in it, is over the limit"},
    415: {"model": ErrorBody, "description": "the body is not JSON"},
}
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorBody,
        "description": "too many of these requests a minute; retry after `Retry-After` s",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
