"""Metrics' request and response bodies."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from common.methods import (
    DirectionField,
    MetricDetection,
    MinDeviation,
    MinRelativeDeviation,
    Sensitivity,
)
from common.metrics.models import Metric
from web.schemas.fields import Description, Labels, Name, NameEditUpdate, ObjectId, RequestModel
from web.schemas.responses import ErrorBody


class MetricCreate(RequestModel):
    name: Name
    description: Description | None = None
    service_id: ObjectId
    labels: Labels | None = None


class MetricDetectionUpdate(RequestModel):
    sensitivity: Sensitivity = None
    direction: DirectionField = None
    min_deviation: MinDeviation = None
    min_relative_deviation: MinRelativeDeviation = None


class MetricUpdate(NameEditUpdate):
    detection: MetricDetectionUpdate | None = Field(
        default=None,
        description="the metric's own detection settings, used by its scans and as the "
        "defaults of its jobs: the fields sent replace the stored ones (null: back to the "
        "default); null for the whole resets them all",
    )

    def detection_after(self, current: MetricDetection) -> MetricDetection | None:
        """The metric's detection settings once this PATCH is applied; None: not sent."""
        if "detection" not in self.model_fields_set:
            return None
        if self.detection is None:
            return MetricDetection()
        sent = self.detection.model_fields_set
        return current.model_copy(update={name: getattr(self.detection, name) for name in sent})


MetricPublic = Metric

NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "the service has a metric of that name"}
}
METRIC_LIMIT: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorBody, "description": "you have MAX_METRICS_PER_OWNER metrics already"}
}
