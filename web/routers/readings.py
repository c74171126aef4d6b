"""Readings of many metrics in one request: `POST /api/readings`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import TypeAdapter, ValidationError

from common.epoch import now_ms
from common.ingestion.models import Series, SeriesOutcome
from common.ingestion.service import ingest, ingest_limits, refusal
from common.own_metrics import READINGS_INGESTED
from web.deps import CurrentUser, RepositoriesDep, SettingsDep
from web.errors import PayloadTooLargeError
from web.schemas.readings import (
    ReadingsIngestCreate,
    ReadingsIngested,
    SentReadings,
    SeriesByMetricId,
    SeriesByServiceId,
    SeriesByServiceName,
    SeriesCreate,
    sent_readings,
)
from web.schemas.responses import AUTH_ERRORS, BAD_BODY, ErrorBody

router = APIRouter(prefix="/api/readings", tags=["readings"], responses=AUTH_ERRORS)

AnySeries = SeriesByMetricId | SeriesByServiceId | SeriesByServiceName
SERIES: TypeAdapter[list[AnySeries]] = TypeAdapter(list[SeriesCreate])
SERIES_ONE: TypeAdapter[AnySeries] = TypeAdapter(SeriesCreate)
# Readings in a series from which the fast path pays one series at a time: below it, the
# fast path's few steps per series cost more than a model per reading (1,000 series of one
# reading: 25 ms against 10; 10 series of 1,000: 19 ms against 58), so the shorter series
# take it together, their readings as one column (_fast_short).
FAST_PATH_FROM = 10
# What stands for a series' readings once they passed the fast path, so that the model
# checks the rest of the series (how it names its metric, its labels) as it checks a whole
# one, without a model object per reading.
_STAND_IN = ({"value": 0.0},)
PROBLEMS_SHOWN = 5  # validation problems quoted per refused series
NAMINGS = ("metric_id", "service_id", "service_name")

PARTLY_STORED = "some series were stored, others refused: each series says which and why"
REFUSED: dict[int | str, dict[str, Any]] = {
    207: {"model": ReadingsIngested, "description": PARTLY_STORED},
    404: {"model": ReadingsIngested, "description": "every series names a metric you lack"},
    409: {"model": ReadingsIngested, "description": "every series names an ambiguous service"},
    422: {"model": ReadingsIngested | ErrorBody, "description": "no series could be stored"},
    429: {"model": ReadingsIngested, "description": "every series needs a metric over the limit"},
}


def _problems(error: ValidationError) -> str:
    """What is wrong where in a series (the union's tag, which way it names its metric, is
    left out of the location)."""
    problems = []
    for problem in error.errors()[:PROBLEMS_SHOWN]:
        loc = [str(part) for part in problem["loc"]]
        where = ".".join(loc[1:] if loc and loc[0] in NAMINGS else loc) or "series"
        problems.append(f"{where}: {problem['msg']}")
    return "; ".join(problems)


ValidSeries = tuple[AnySeries, SentReadings]


def _fast(item: Any) -> ValidSeries | None:
    """A series whose readings pass the fast path (web.schemas.readings.sent_readings), the
    rest of it validated by the model; None: the model validates the whole series."""
    readings = sent_readings(item.get("readings")) if type(item) is dict else None
    if not readings:  # none sent, outside the fast path, or an empty list (the model says)
        return None
    try:
        return SERIES_ONE.validate_python({**item, "readings": _STAND_IN}), readings
    except ValidationError:
        return None


def _fast_short(raw: list[Any], indexes: list[int]) -> dict[int, ValidSeries] | None:
    """The short series as one fast path: their readings checked as one column (the fast
    path's checks are per reading, so a column of several series' readings passes exactly
    when each series' would), the rest of each series by the model in one call, readings
    stood in for. None when anything is outside the fast path or invalid: the model then
    validates them as before and says what is wrong. A fleet's minute is 1,000 series of
    one reading: a series model with a reading model each, and the columns made from them,
    cost three times this (BENCHMARKS.md, Ingest)."""
    items = [raw[index] for index in indexes]
    if not all(type(item) is dict and type(item.get("readings")) is list for item in items):
        return None
    lengths = [len(item["readings"]) for item in items]
    if not all(lengths):
        return None  # an empty list: the model says it needs one reading
    readings = sent_readings([reading for item in items for reading in item["readings"]])
    if readings is None:
        return None
    try:
        models = SERIES.validate_python([{**item, "readings": _STAND_IN} for item in items])
    except ValidationError:
        return None
    valid: dict[int, ValidSeries] = {}
    start = 0
    for index, series, length in zip(indexes, models, lengths, strict=True):
        end = start + length
        valid[index] = series, readings.slice(start, end)
        start = end
    return valid


def _validated(raw: list[Any]) -> tuple[dict[int, ValidSeries], dict[int, str]]:
    """The series that are valid, by position, and why each other one is not. Long series
    through the fast path one by one, the short ones through it together (_fast_short);
    those it declines by the model, in one call when they are all valid (the common case),
    else one by one to say which are not."""
    valid: dict[int, ValidSeries] = {}
    invalid: dict[int, str] = {}
    by_model: list[int] = []
    for index, item in enumerate(raw):
        fast = _fast(item) if _received(item) >= FAST_PATH_FROM else None
        if fast is None:
            by_model.append(index)
        else:
            valid[index] = fast
    short = _fast_short(raw, by_model) if by_model else None
    if short is not None:
        valid.update(short)
        return valid, invalid
    try:
        models = SERIES.validate_python([raw[index] for index in by_model])
    except ValidationError:
        pass
    else:
        for index, series in zip(by_model, models, strict=True):
            valid[index] = series, SentReadings.of(series.readings)
        return valid, invalid
    for index in by_model:
        try:
            series = SERIES_ONE.validate_python(raw[index])
        except ValidationError as exc:
            invalid[index] = _problems(exc)
        else:
            valid[index] = series, SentReadings.of(series.readings)
    return valid, invalid


def _series(valid: ValidSeries, received_ms: int) -> Series:
    item, readings = valid
    return Series(
        readings=readings.new_readings(received_ms),
        metric_id=item.metric_id if isinstance(item, SeriesByMetricId) else None,
        service_id=item.service_id if isinstance(item, SeriesByServiceId) else None,
        service_name=item.service_name if isinstance(item, SeriesByServiceName) else None,
        metric_name=None if isinstance(item, SeriesByMetricId) else item.metric_name,
        labels={} if isinstance(item, SeriesByMetricId) else item.labels or {},
    )


def _received(item: Any) -> int:
    readings = item.get("readings") if isinstance(item, dict) else None
    return len(readings) if isinstance(readings, list) else 0


def _status(answer: ReadingsIngested) -> int:
    errors = answer.errors()
    if not errors:
        return status.HTTP_201_CREATED
    if len(errors) < len(answer.series):
        return status.HTTP_207_MULTI_STATUS
    statuses = {error.status for error in errors}
    return statuses.pop() if len(statuses) == 1 else status.HTTP_422_UNPROCESSABLE_ENTITY


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReadingsIngested,
    responses={**BAD_BODY, **REFUSED},
)
def add_readings_of_many_metrics(
    body: ReadingsIngestCreate,
    user: CurrentUser,
    repositories: RepositoriesDep,
    settings: SettingsDep,
) -> Response:
    """Add readings of many metrics: `{"series": [{metric_id or service and metric_name,
    readings}, ...]}`.

    Each series is stored whole or refused whole; a refused series (unknown metric,
    malformed, stamped too far ahead, over the metric limit) does not stop the others:
    201 when every series was stored, 207 when some were refused, else the refusals'
    status. Safe to retry: readings whose id is stored already are counted in `duplicates`.
    """
    received = sum(_received(item) for item in body.series)
    limit = settings.max_batch_readings
    if received > limit or len(body.series) > limit:
        raise PayloadTooLargeError(
            f"a request holds at most {limit} readings (MAX_BATCH_READINGS); got {received} "
            f"in {len(body.series)} series: split it into several requests"
        )
    valid, invalid = _validated(body.series)
    received_ms = now_ms()
    positions = sorted(valid)
    report = ingest(
        repositories.metrics,
        repositories.readings,
        user.id,
        [_series(valid[i], received_ms) for i in positions],
        create_missing=body.create_missing,
        limits=ingest_limits(settings),
    )
    READINGS_INGESTED.labels("api").inc(report.stored)
    outcomes: list[SeriesOutcome] = []
    for position, outcome in zip(positions, report.series, strict=True):
        outcome.index = position
        outcomes.append(outcome)
    outcomes += [
        SeriesOutcome(
            index=i,
            metric_id=None,
            received=_received(body.series[i]),
            error=refusal("invalid", problems),
        )
        for i, problems in invalid.items()
    ]
    outcomes.sort(key=lambda outcome: outcome.index)
    answer = ReadingsIngested.of(outcomes)
    code = _status(answer)
    if code >= 400:
        first = answer.errors()[0]
        answer.detail = f"no series stored ({len(outcomes)} refused); the first: {first.message}"
    return Response(answer.model_dump_json(), status_code=code, media_type="application/json")
