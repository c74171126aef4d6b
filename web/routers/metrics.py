"""Metrics of a service, and their readings (kept as a linked chain in the graph)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as json_string
from typing import Any

import numpy as np
from fastapi import APIRouter, Response, status

from common.errors import found
from common.ids import new_id
from common.jobs.results import json_floats
from common.models import NewReading, ReadingSeries, iso_timestamps, to_epoch_ms
from web.deps import CurrentUser, OwnedMetric, OwnedService, SettingsDep, StoreDep
from web.errors import PayloadTooLargeError
from web.paging import PageDep, encode_cursor
from web.schemas import (
    AUTH_ERRORS,
    BAD_BODY,
    BAD_REQUEST,
    NOT_FOUND,
    ErrorBody,
    MetricCreate,
    MetricPublic,
    MetricUpdate,
    ReadingBatchCreate,
    ReadingCreate,
    ReadingPage,
    ReadingsStored,
)

# Every metric route names a metric or a service: 404 when it is not the caller's.
router = APIRouter(prefix="/api/metrics", tags=["metrics"], responses={**AUTH_ERRORS, **NOT_FOUND})
NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "the service has a metric of that name"}
}


@router.post("", status_code=status.HTTP_201_CREATED, responses={**BAD_BODY, **NAME_TAKEN})
def create_metric(body: MetricCreate, user: CurrentUser, store: StoreDep) -> MetricPublic:
    """Create a metric in one of the caller's services; names are unique within a service."""
    return store.create_metric(user.id, body.service_id, body.name, body.description)


@router.get("/service/{service_id}", responses=BAD_REQUEST)
def list_service_metrics(
    service: OwnedService, user: CurrentUser, store: StoreDep
) -> list[MetricPublic]:
    """List a service's metrics, each with its latest reading."""
    return store.list_metrics(user.id, service.id)


@router.get("/{metric_id}", responses=BAD_REQUEST)
def get_metric(metric: OwnedMetric) -> MetricPublic:
    """Get one metric with its latest reading."""
    return metric


@router.patch("/{metric_id}", responses={**BAD_BODY, **NAME_TAKEN})
def update_metric(
    body: MetricUpdate, metric: OwnedMetric, user: CurrentUser, store: StoreDep
) -> MetricPublic:
    """Rename a metric or change its description (send null to clear the description)."""
    updated = store.update_metric(
        user.id,
        metric.id,
        name=body.name,
        description=body.description,
        set_description="description" in body.model_fields_set,
    )
    return found(updated, f"metric {metric.id}")


@router.delete("/{metric_id}", status_code=status.HTTP_204_NO_CONTENT, responses=BAD_REQUEST)
def delete_metric(metric: OwnedMetric, user: CurrentUser, store: StoreDep) -> Response:
    """Delete a metric with its readings and anomalies."""
    store.delete_metric(user.id, metric.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{metric_id}/readings",
    status_code=status.HTTP_201_CREATED,
    responses=BAD_BODY,
)
def add_readings(
    body: ReadingCreate | ReadingBatchCreate,
    metric: OwnedMetric,
    store: StoreDep,
    settings: SettingsDep,
) -> ReadingsStored:
    """Add one reading `{value, timestamp?, id?}` or a batch `{"readings": [...]}`.

    Readings may arrive in any order: each is linked into the chain at its timestamp.
    A reading whose id is already stored is not stored again (counted in `duplicates`),
    so a client can safely re-send a batch after a timeout.
    """
    items = body.readings if isinstance(body, ReadingBatchCreate) else [body]
    if len(items) > settings.max_batch_readings:
        raise PayloadTooLargeError(
            f"a batch holds at most {settings.max_batch_readings} readings; got {len(items)}: "
            "split it into several requests"
        )
    now = datetime.now(UTC)
    readings = [
        NewReading(
            id=item.id or new_id(),
            timestamp_ms=to_epoch_ms(item.timestamp or now),
            value=item.value,
        )
        for item in items
    ]
    stored = store.append_readings(metric.id, readings)
    return ReadingsStored(
        received=len(readings),
        stored=stored,
        duplicates=len(readings) - stored,
        ids=[reading.id for reading in readings],
    )


@router.get(
    "/{metric_id}/readings",
    response_class=Response,
    responses={**BAD_REQUEST, 200: {"model": ReadingPage, "description": "a page of readings"}},
)
def list_readings(metric: OwnedMetric, store: StoreDep, paging: PageDep) -> Response:
    """List readings in time order, a page at a time (follow `next_cursor`)."""
    page = store.list_readings(metric.id, paging.start, paging.end, paging.size, paging.after)
    next_cursor = None
    if len(page) == paging.size:  # a full page has a cursor to the next
        next_cursor = encode_cursor(int(page.timestamps_ms[-1]), page.ids[-1])
    return Response(reading_page_json(page, next_cursor), media_type="application/json")


def reading_page_json(page: ReadingSeries, next_cursor: str | None) -> bytes:
    """The ReadingPage body, built from the store's columns.

    Validating and serialising one pydantic model per reading cost six times the graph read
    for a page of 10,000; these are values the store just returned, so they are only
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
