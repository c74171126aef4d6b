"""Request and response bodies of the CRUD API (XCreate / XUpdate / XPublic).

Every request model forbids unknown fields, so a typo is an error, not silently ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from common.incidents.models import ServiceRef
from common.models import Metric, Reading, Service

# Readings outside this range are almost certainly a unit mistake (ms sent as seconds, say).
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(2200, 1, 1, tzinfo=UTC)

# No control characters (C0, DEL, C1) in names and ids; descriptions may hold tabs and line
# breaks. A NUL would also break FalkorDB's parameter parsing (it answers an error).
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]+$"
TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=NO_CONTROL),
    Field(description="1 to 100 characters, no control characters"),
]
Description = Annotated[
    str,
    StringConstraints(max_length=1000, pattern=TEXT),
    Field(description="up to 1000 characters; no control characters but tab and line breaks"),
]
ObjectId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_CONTROL)]
ReadingId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=NO_CONTROL),
    Field(description="client-chosen id; a reading re-sent with the same id is stored once"),
]
# Strict: a JSON number only (an integer is fine), not true/false or "1.5".
# |v| <= 1e308: the embedded FalkorDB answers doubles to 15 significant digits, which rounds
# values near the float maximum up to infinity on the way back.
MAX_VALUE = 1e308


def within_max_value(value: float) -> float:
    if abs(value) > MAX_VALUE:
        raise ValueError("value must be at most 1e308 in size")
    return value


FiniteFloat = Annotated[
    float,
    Field(
        strict=True,
        allow_inf_nan=False,
        # Documented here, checked by within_max_value (le= would print the bound in full).
        json_schema_extra={"minimum": -MAX_VALUE, "maximum": MAX_VALUE},
        description="a finite number, at most 1e308 in size (kept to 15 significant digits)",
    ),
    AfterValidator(within_max_value),
]


def as_utc(moment: datetime) -> datetime:
    """Naive timestamps are UTC; the result is always in range and timezone-aware."""
    out_of_range = "timestamp must be between 1970-01-01 and 2200-01-01 (UTC)"
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError as exc:  # 9999-12-31T23:00-05:00 is past year 9999 in UTC
        raise ValueError(out_of_range) from exc
    if not EARLIEST_TIMESTAMP <= moment < LATEST_TIMESTAMP:
        raise ValueError(out_of_range)
    return moment


def _is_number(value: Any) -> bool:
    if isinstance(value, int | float):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def iso_text_only(value: Any) -> Any:
    """A number (or "1700000000" in a query) would be read as epoch seconds or milliseconds
    depending on its size: refuse to guess."""
    if _is_number(value):
        raise ValueError("timestamp must be an ISO 8601 string such as 2026-01-01T00:00:00Z")
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(iso_text_only),
    AfterValidator(as_utc),
    Field(description="ISO 8601; without an offset it is taken as UTC"),
]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServiceCreate(RequestModel):
    name: Name
    description: Description | None = None


class ServiceUpdate(RequestModel):
    name: Name | None = None
    description: Description | None = None


ServicePublic = Service


class ServiceDetail(Service):
    """A service with its direct dependencies (upstream) and dependents (downstream)."""

    depends_on: list[ServiceRef] = Field(description="services this one depends on (upstream)")
    dependents: list[ServiceRef] = Field(description="services that depend on this one")


class MetricCreate(RequestModel):
    name: Name
    description: Description | None = None
    service_id: ObjectId


class MetricUpdate(RequestModel):
    name: Name | None = None
    description: Description | None = None


MetricPublic = Metric


class ReadingCreate(RequestModel):
    value: FiniteFloat
    timestamp: Timestamp | None = Field(default=None, description="default: now")
    id: ReadingId | None = Field(default=None, description="default: a new random id")


class ReadingBatchCreate(RequestModel):
    readings: list[ReadingCreate]


class ReadingsStored(BaseModel):
    received: int = Field(description="readings in the request")
    stored: int = Field(description="readings that were new")
    duplicates: int = Field(description="readings whose id was already stored (not changed)")
    ids: list[str] = Field(description="the id of each received reading, in request order")


ReadingPublic = Reading


class ReadingPage(BaseModel):
    readings: list[ReadingPublic]
    next_cursor: str | None = Field(
        description="pass as ?cursor= to get the next page; null on the last page"
    )


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    down: list[Literal["graph store", "redis"]] = Field(description="the dependencies down")


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
