"""Maintenance windows' request and response bodies."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from common.epoch import optional_ms
from common.maintenance.models import MaintenanceWindow, Weekday, WeeklySchedule, WindowSpec
from web.schemas.fields import NO_CONTROL, TEXT, ObjectId, RequestModel, Timestamp


def whole_minute(moment: time) -> time:
    if moment.tzinfo is not None:
        raise ValueError("a local time of day without an offset: the zone is time_zone")
    if moment.second or moment.microsecond:
        raise ValueError("a time of day in whole minutes, HH:MM")
    return moment


TimeOfDay = Annotated[time, AfterValidator(whole_minute), Field(description="HH:MM, local")]
Reason = Annotated[
    str,
    StringConstraints(min_length=1, max_length=500, pattern=TEXT),
    Field(description="why: shown wherever the window is (1 to 500 characters)"),
]


class WeeklyBody(RequestModel):
    days: list[Weekday] = Field(min_length=1, max_length=7, description='e.g. ["sat", "sun"]')
    start_time: TimeOfDay
    end_time: TimeOfDay = Field(description="HH:MM, local; at or before start_time: next day")
    time_zone: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64, pattern=NO_CONTROL),
        Field(description="an IANA time zone name: Europe/Berlin, America/New_York, UTC"),
    ]

    def schedule(self) -> WeeklySchedule:
        return WeeklySchedule(**self.model_dump())


class WindowCreate(RequestModel):
    reason: Reason
    service_id: ObjectId | None = Field(default=None, description="mute this service's metrics")
    metric_id: ObjectId | None = Field(default=None, description="mute this metric")
    start: Timestamp | None = Field(
        default=None, description="one-off: required; weekly: when it begins (default: always)"
    )
    end: Timestamp | None = Field(
        default=None, description="one-off: required; weekly: when it stops (default: never)"
    )
    weekly: WeeklyBody | None = Field(default=None, description="recur every week")

    def spec(self) -> WindowSpec:
        return WindowSpec(
            reason=self.reason,
            start_ms=optional_ms(self.start),
            end_ms=optional_ms(self.end),
            weekly=None if self.weekly is None else self.weekly.schedule(),
            service_id=self.service_id,
            metric_id=self.metric_id,
        )


# A PATCH: the fields sent replace the stored ones (null clears an optional one); the window
# is then checked whole, as on create.
class WindowUpdate(RequestModel):
    reason: Reason | None = None
    service_id: ObjectId | None = None
    metric_id: ObjectId | None = None
    start: Timestamp | None = None
    end: Timestamp | None = None
    weekly: WeeklyBody | None = None

    @model_validator(mode="after")
    def reason_kept(self) -> WindowUpdate:
        if "reason" in self.model_fields_set and self.reason is None:
            raise ValueError("reason cannot be null: send a new one, or leave it out")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields sent, as WindowSpec's."""
        sent = self.model_fields_set
        converted: dict[str, Any] = {
            "reason": self.reason,
            "service_id": self.service_id,
            "metric_id": self.metric_id,
            "start_ms": optional_ms(self.start),
            "end_ms": optional_ms(self.end),
            "weekly": None if self.weekly is None else self.weekly.schedule(),
        }
        names = {"start": "start_ms", "end": "end_ms"}
        return {names.get(f, f): converted[names.get(f, f)] for f in sent}


WindowPublic = MaintenanceWindow


class MaintenanceSpan(BaseModel):
    start: datetime
    end: datetime
    window_id: str
    reason: str
    reach_pending: bool = Field(
        description="the window's reach into the past (muting the anomalies already stored "
        "in it) is still being applied by a worker: as the window's own `reach_pending`"
    )


class MaintenanceSpans(BaseModel):
    metric_id: str
    spans: list[MaintenanceSpan] = Field(description="in time order, clipped to [start, end)")
    truncated: bool = Field(description="more spans than `limit`: narrow the range")
