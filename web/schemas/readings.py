"""Readings' request and response bodies, and a page of readings written as JSON directly."""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as json_string
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, Discriminator, Field, SkipValidation, Tag

from common.ingestion.models import IngestReport
from common.jobs.results import json_floats
from common.metrics.models import Reading, ReadingSeries
from web.schemas.fields import (
    FiniteFloat,
    Labels,
    Name,
    ObjectId,
    ReadingId,
    RequestModel,
    Timestamp,
)

LABELS_KEPT = "stored on the metric if this request creates it"


class ReadingCreate(RequestModel):
    value: FiniteFloat
    timestamp: Timestamp | None = Field(default=None, description="default: now")
    id: ReadingId | None = Field(default=None, description="default: a new random id")


class ReadingBatchCreate(RequestModel):
    readings: list[ReadingCreate]


def _reading_shape(body: Any) -> str:
    """A body holding "readings" is a batch; anything else is one reading. Chosen before
    validating, so a bad body's errors are its own shape's, not both shapes'."""
    return "batch" if isinstance(body, dict) and "readings" in body else "reading"


# One reading, or a batch of them (POST /api/metrics/{metric_id}/readings).
ReadingsCreate = Annotated[
    Annotated[ReadingCreate, Tag("reading")] | Annotated[ReadingBatchCreate, Tag("batch")],
    Discriminator(_reading_shape),
]


class ReadingsStored(BaseModel):
    received: int = Field(description="readings in the request")
    stored: int = Field(description="readings that were new")
    duplicates: int = Field(description="readings whose id was already stored (not changed)")
    ids: list[str] = Field(description="the id of each received reading, in request order")


class SeriesByMetricId(RequestModel):
    """A metric's readings, the metric named by its id."""

    metric_id: ObjectId
    readings: list[ReadingCreate] = Field(min_length=1)


class SeriesByServiceId(RequestModel):
    """A metric's readings, the metric named by its service's id and its name."""

    service_id: ObjectId
    metric_name: Name
    labels: Labels | None = Field(default=None, description=LABELS_KEPT)
    readings: list[ReadingCreate] = Field(min_length=1)


class SeriesByServiceName(RequestModel):
    """A metric's readings, the metric named by its service's name and its name."""

    service_name: Name
    metric_name: Name
    labels: Labels | None = Field(default=None, description=LABELS_KEPT)
    readings: list[ReadingCreate] = Field(min_length=1)


def _naming(item: Any) -> str:
    """Which way a series names its metric (so that a bad series is told about that way)."""
    fields = item if isinstance(item, dict) else {}
    return next((name for name in ("metric_id", "service_id") if name in fields), "service_name")


SeriesCreate = Annotated[
    Annotated[SeriesByMetricId, Tag("metric_id")]
    | Annotated[SeriesByServiceId, Tag("service_id")]
    | Annotated[SeriesByServiceName, Tag("service_name")],
    Discriminator(_naming),
]


class ReadingsIngestCreate(RequestModel):
    create_missing: bool = Field(
        default=False,
        description="create the metrics (and services, named by service_name) you do not have "
        "yet, up to MAX_METRICS_PER_OWNER",
    )
    # Each series is validated on its own (web.routers.readings): a malformed one is refused
    # in the answer, and the others are stored.
    series: list[SkipValidation[SeriesCreate]] = Field(
        min_length=1, description="a metric at most once; MAX_BATCH_READINGS readings in all"
    )


class ReadingsIngested(IngestReport):
    detail: str | None = Field(
        default=None, description="when no series was stored: why (each series says its own)"
    )


ReadingPublic = Reading


class ReadingPage(BaseModel):
    readings: list[ReadingPublic]
    next_cursor: str | None = Field(
        description="pass as ?cursor= to get the next page; null on the last page"
    )


# Pieces of ISO 8601 text, formatted once: a column of timestamps is then only looked up and
# joined, six times faster than formatting each (a 10,000-reading page in 2 ms, not 11).
_HOURS_MINUTES = [f"T{hour:02}:{minute:02}:" for hour in range(24) for minute in range(60)]
_SECONDS = [f"{second:02}" for second in range(60)]
_FRACTIONS = ["Z"] + [f".{milli:03}000Z" for milli in range(1, 1000)]


def iso_timestamps(epoch_ms: np.ndarray) -> list[str]:
    """Epoch milliseconds as the ISO 8601 text pydantic writes for a UTC datetime
    (`2026-01-01T10:00:00Z`, `2026-01-01T10:00:00.250000Z`), for a whole column at once."""
    days, ms_of_day = np.divmod(np.asarray(epoch_ms, dtype=np.int64), 86_400_000)
    seconds_of_day, millis = np.divmod(ms_of_day, 1000)
    minutes, seconds = np.divmod(seconds_of_day, 60)
    dates = {day: str(np.datetime64(day, "D")) for day in np.unique(days).tolist()}
    return [
        dates[day] + _HOURS_MINUTES[minute] + _SECONDS[second] + _FRACTIONS[milli]
        for day, minute, second, milli in zip(
            days.tolist(), minutes.tolist(), seconds.tolist(), millis.tolist(), strict=True
        )
    ]


def reading_page_json(page: ReadingSeries, next_cursor: str | None) -> bytes:
    """The ReadingPage body, built from the repository's columns.

    Validating and serialising one pydantic model per reading cost six times the graph read
    for a page of 10,000; these are values the graph just returned, so they are only
    formatted: timestamps exactly as pydantic writes them, ids through json's own string
    encoder, values by repr (what json.dumps writes for a float).
    """
    timestamps = iso_timestamps(page.timestamps_ms)
    if not np.isfinite(page.values).all():
        # Never stored through the API (it refuses NaN and infinities); JSON has no NaN.
        rows: list[dict[str, Any]] = [
            {"id": reading_id, "timestamp": timestamp, "value": value}
            for reading_id, timestamp, value in zip(
                page.ids, timestamps, json_floats(page.values), strict=True
            )
        ]
        return json.dumps({"readings": rows, "next_cursor": next_cursor}).encode()
    readings = ",".join(
        f'{{"id":{json_string(reading_id)},"timestamp":"{timestamp}","value":{value!r}}}'
        for reading_id, timestamp, value in zip(
            page.ids, timestamps, page.values.tolist(), strict=True
        )
    )
    return f'{{"readings":[{readings}],"next_cursor":{json.dumps(next_cursor)}}}'.encode()
