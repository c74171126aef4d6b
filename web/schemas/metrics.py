"""Metrics' request and response bodies."""

from __future__ import annotations

from typing import Any

from common.metrics.models import Metric
from web.schemas.fields import Description, Labels, Name, NameEditUpdate, ObjectId, RequestModel
from web.schemas.responses import ErrorBody


class MetricCreate(RequestModel):
    name: Name
    description: Description | None = None
    service_id: ObjectId
    labels: Labels | None = None


class MetricUpdate(NameEditUpdate):
    pass


MetricPublic = Metric

NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "the service has a metric of that name"}
}
METRIC_LIMIT: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorBody, "description": "you have MAX_METRICS_PER_OWNER metrics already"}
}
