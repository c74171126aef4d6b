"""Starting a detection job: the seed's request body (and naming a metric by id)."""

from __future__ import annotations

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field

from common.epoch import to_epoch_ms
from common.jobs.submission import MetricById, MetricByName, MetricTarget
from common.jobs.window import WindowRequest
from common.methods import MethodSettings
from web.schemas.fields import Name, ObjectId, RequestModel, Timestamp
from web.schemas.jobs import JobPublic


class DetectionOptions(RequestModel, MethodSettings):
    """The window is `start`..`end`, or `time_window_seconds` before `end` (default: now),
    or from `start` on; with none of them, every reading (the newest JOB_MAX_POINTS at most).
    """

    # The method's settings are a job's (MethodSettings), but sigma keeps the seed's name.
    model_config = ConfigDict(
        alias_generator=AliasGenerator(
            validation_alias=lambda name: "sigma_threshold" if name == "sigma" else name
        )
    )

    time_window_seconds: int | None = Field(default=None, gt=0, le=100 * 365 * 24 * 3600)
    start: Timestamp | None = Field(default=None, description="inclusive")
    end: Timestamp | None = Field(default=None, description="exclusive")

    def window_request(self) -> WindowRequest:
        return WindowRequest(
            start_ms=None if self.start is None else to_epoch_ms(self.start),
            end_ms=None if self.end is None else to_epoch_ms(self.end),
            seconds=self.time_window_seconds,
        )

    def method_settings(self) -> MethodSettings:
        return MethodSettings(**self.model_dump(include=set(MethodSettings.model_fields)))


class DetectionByMetricId(DetectionOptions):
    metric_id: ObjectId

    def target(self) -> MetricTarget:
        return MetricById(self.metric_id)


class DetectionByMetricName(DetectionOptions):
    """The seed's way of naming a metric."""

    service_id: ObjectId
    metric_name: Name

    def target(self) -> MetricTarget:
        return MetricByName(self.service_id, self.metric_name)


DetectionJobCreate = DetectionByMetricId | DetectionByMetricName


class JobAccepted(BaseModel):
    job_id: str
    status: str
    status_url: str = Field(description="poll this until the status is succeeded or failed")
    result_url: str
    job: JobPublic | None = Field(
        default=None, description="with ?wait=: the job as it was when the wait ended"
    )
