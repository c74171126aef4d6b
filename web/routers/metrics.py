"""Metrics of a service, and their readings (kept as a linked chain in the graph)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from common.epoch import now_ms, to_epoch_ms
from common.errors import InvalidRequestError, NotFoundError, found
from common.ingestion.service import future_reading, ingest_limits
from common.own_metrics import READINGS_INGESTED
from web.deps import (
    CurrentUser,
    OwnedMetric,
    OwnedService,
    PathId,
    RepositoriesDep,
    SettingsDep,
)
from web.errors import PayloadTooLargeError
from web.paging import PageDep, encode_cursor
from web.schemas.metrics import (
    METRIC_LIMIT,
    NAME_TAKEN,
    MetricCreate,
    MetricPublic,
    MetricUpdate,
)
from web.schemas.readings import (
    ReadingPage,
    ReadingsBody,
    ReadingsStored,
    reading_page_json,
)
from web.schemas.responses import AUTH_ERRORS, BAD_BODY, BAD_REQUEST, NOT_FOUND

# Every metric route names a metric or a service: 404 when it is not the caller's.
router = APIRouter(prefix="/api/metrics", tags=["metrics"], responses={**AUTH_ERRORS, **NOT_FOUND})


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**BAD_BODY, **NAME_TAKEN, **METRIC_LIMIT},
)
def create_metric(
    body: MetricCreate, user: CurrentUser, repositories: RepositoriesDep, settings: SettingsDep
) -> MetricPublic:
    """Create a metric in one of the caller's services; names are unique within a service."""
    return repositories.metrics.create(
        user.id,
        body.service_id,
        body.name,
        body.description,
        labels=body.labels,
        max_metrics=settings.max_metrics_per_owner,
    )


@router.get("/service/{service_id}", responses=BAD_REQUEST)
def list_service_metrics(
    service: OwnedService, user: CurrentUser, repositories: RepositoriesDep
) -> list[MetricPublic]:
    """List a service's metrics, each with its latest reading."""
    return repositories.metrics.list_in_service(user.id, service.id)


@router.get("/{metric_id}", responses=BAD_REQUEST)
def get_metric(metric: OwnedMetric) -> MetricPublic:
    """Get one metric with its latest reading."""
    return metric


@router.patch("/{metric_id}", responses={**BAD_BODY, **NAME_TAKEN})
def update_metric(
    body: MetricUpdate, metric: OwnedMetric, user: CurrentUser, repositories: RepositoriesDep
) -> MetricPublic:
    """Rename a metric, change its description (null clears it) or its detection settings."""
    updated = found(
        repositories.metrics.update(user.id, metric.id, body.edit()), f"metric {metric.id}"
    )
    detection = body.detection_after(metric.detection)
    if detection is not None:
        updated = found(
            repositories.metrics.set_detection(user.id, metric.id, detection), f"metric {metric.id}"
        )
    return updated


@router.delete("/{metric_id}", status_code=status.HTTP_204_NO_CONTENT, responses=BAD_REQUEST)
def delete_metric(metric_id: PathId, user: CurrentUser, repositories: RepositoriesDep) -> Response:
    """Delete a metric with its readings and anomalies (carries on a delete cut short)."""
    if not repositories.metrics.delete(user.id, metric_id):
        raise NotFoundError(f"metric {metric_id} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{metric_id}/readings",
    status_code=status.HTTP_201_CREATED,
    responses=BAD_BODY,
)
def add_readings(
    body: Annotated[ReadingsBody, Body()],
    metric: OwnedMetric,
    repositories: RepositoriesDep,
    settings: SettingsDep,
) -> ReadingsStored:
    """Add one reading `{value, timestamp?, id?}` or a batch `{"readings": [...]}`.

    Readings may arrive in any order: each is linked into the chain at its timestamp.
    A reading whose id is already stored is not stored again (counted in `duplicates`),
    so a client can safely re-send a batch after a timeout. A reading stamped more than
    MAX_CLOCK_SKEW_SECONDS ahead of the server's clock is refused (422).
    """
    if len(body) > settings.max_batch_readings:
        raise PayloadTooLargeError(
            f"a batch holds at most {settings.max_batch_readings} readings; got {len(body)}: "
            "split it into several requests"
        )
    received_ms = now_ms()
    readings = body.new_readings(received_ms)
    too_late = future_reading(readings, received_ms, ingest_limits(settings))
    if too_late is not None:
        raise InvalidRequestError(too_late)
    latest = metric.latest_reading
    known = None if latest is None else (to_epoch_ms(latest.timestamp), latest.id)
    stored = repositories.readings.append(metric.id, readings, latest={metric.id: known})
    READINGS_INGESTED.labels("api").inc(stored)
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
def list_readings(metric: OwnedMetric, repositories: RepositoriesDep, paging: PageDep) -> Response:
    """List readings in time order, a page at a time (follow `next_cursor`)."""
    page = repositories.readings.list_page(metric.id, paging)
    next_cursor = None
    if len(page) == paging.size:  # a full page has a cursor to the next
        next_cursor = encode_cursor(int(page.timestamps_ms[-1]), page.ids[-1])
    return Response(reading_page_json(page, next_cursor), media_type="application/json")
