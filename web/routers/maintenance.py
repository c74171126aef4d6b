"""Maintenance windows: when a service's, a metric's or all of the caller's anomalies are
muted (stored, but in no incident and no notification)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from common.epoch import from_epoch_ms, to_epoch_ms
from common.errors import InvalidRequestError, found
from common.maintenance.models import MaintenanceWindow
from common.maintenance.service import create_window as add_window
from common.maintenance.service import delete_window as remove_window
from common.maintenance.service import metric_spans
from common.maintenance.service import update_window as change_window
from web.deps import CurrentUser, JobQueueDep, PathId, RepositoriesDep, SettingsDep
from web.schemas.fields import ObjectId, Timestamp
from web.schemas.maintenance import (
    MaintenanceSpan,
    MaintenanceSpans,
    WindowCreate,
    WindowPublic,
    WindowUpdate,
)
from web.schemas.responses import AUTH_ERRORS, BAD_BODY, BAD_REQUEST, NOT_FOUND

router = APIRouter(
    prefix="/api/maintenance-windows",
    tags=["maintenance"],
    responses={**AUTH_ERRORS, **BAD_REQUEST},
)


def get_owned_window(
    window_id: PathId, user: CurrentUser, repositories: RepositoriesDep
) -> MaintenanceWindow:
    return found(
        repositories.maintenance.get(user.id, window_id), f"maintenance window {window_id}"
    )


OwnedWindow = Annotated[MaintenanceWindow, Depends(get_owned_window)]


@router.post("", status_code=status.HTTP_201_CREATED, responses={**BAD_BODY, **NOT_FOUND})
def create_window(
    body: WindowCreate,
    user: CurrentUser,
    repositories: RepositoriesDep,
    settings: SettingsDep,
    queue: JobQueueDep,
) -> WindowPublic:
    """Mute a service, a metric or all of yours for a span of time, or every week. The
    anomalies already stored in it are muted by a worker right after (`reach_pending`)."""
    return add_window(
        repositories.maintenance, queue, user.id, body.spec(), settings.maintenance_windows_max
    )


@router.get("")
def list_windows(user: CurrentUser, repositories: RepositoriesDep) -> list[WindowPublic]:
    """Your maintenance windows, oldest first."""
    return repositories.maintenance.list_owned(user.id)


@router.get("/spans", responses=NOT_FOUND)
def list_spans(
    metric_id: Annotated[ObjectId, Query(description="the metric whose chart shows them")],
    start: Annotated[Timestamp, Query(description="inclusive")],
    end: Annotated[Timestamp, Query(description="exclusive")],
    user: CurrentUser,
    repositories: RepositoriesDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> MaintenanceSpans:
    """The spans of time in [start, end) the windows of a metric mute (for its chart)."""
    metric = found(repositories.metrics.get(user.id, metric_id), f"metric {metric_id}")
    start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
    if start_ms >= end_ms:
        raise InvalidRequestError("end must be after start")
    windows = repositories.maintenance.of_metric(
        user.id, metric.service_id, metric.id, start_ms, end_ms
    )
    spans, truncated = metric_spans(windows, start_ms, end_ms, limit)
    return MaintenanceSpans(
        metric_id=metric.id,
        spans=[
            MaintenanceSpan(
                start=from_epoch_ms(low),
                end=from_epoch_ms(high),
                window_id=window.id,
                reason=window.reason,
                reach_pending=window.reach_pending,
            )
            for (low, high), window in spans
        ],
        truncated=truncated,
    )


@router.get("/{window_id}", responses=NOT_FOUND)
def get_window(window: OwnedWindow) -> WindowPublic:
    """One maintenance window."""
    return window


@router.patch("/{window_id}", responses={**BAD_BODY, **NOT_FOUND})
def update_window(
    window: OwnedWindow,
    body: WindowUpdate,
    user: CurrentUser,
    repositories: RepositoriesDep,
    queue: JobQueueDep,
) -> WindowPublic:
    """Change a window: the fields sent replace the stored ones (null clears one)."""
    return change_window(repositories.maintenance, queue, user.id, window, body.changes())


@router.delete("/{window_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_window(
    window: OwnedWindow, user: CurrentUser, repositories: RepositoriesDep, queue: JobQueueDep
) -> Response:
    """Delete a window; anomalies it muted stay muted, its readings are learnt from again."""
    remove_window(repositories.maintenance, queue, user.id, window)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
