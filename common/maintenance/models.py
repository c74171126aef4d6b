"""A maintenance window as a person describes it (WindowSpec) and as stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal

from pydantic import BaseModel, Field, field_serializer

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# In Python's order: date.weekday() is the index.
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class WeeklySchedule(BaseModel):
    days: list[Weekday] = Field(description="the days it starts on, in its time zone")
    start_time: time = Field(description="local wall-clock time it starts, HH:MM")
    end_time: time = Field(
        description="local time it ends; at or before start_time: on the next day"
    )
    time_zone: str = Field(description="an IANA time zone name, e.g. Europe/Berlin")

    @field_serializer("start_time", "end_time")
    def _hours_minutes(self, moment: time) -> str:
        return moment.strftime("%H:%M")  # as given: whole minutes


@dataclass(frozen=True)
class WindowSpec:
    """What a window covers and when. Target: `metric_id`, or `service_id`, or neither
    (every metric of the owner). Without `weekly`, the span [start_ms, end_ms); with it, the
    weekly spans between start_ms and end_ms (None: unbounded)."""

    reason: str
    start_ms: int | None = None
    end_ms: int | None = None
    weekly: WeeklySchedule | None = None
    service_id: str | None = None
    metric_id: str | None = None


@dataclass(frozen=True)
class RelearnTarget:
    """The metrics a window covers (as WindowSpec names them) whose readings from `from_ms`
    on must be learnt again: a window over them was made, changed or deleted."""

    service_id: str | None
    metric_id: str | None
    from_ms: int


# A stored window, as the API shows it (no docstring: it would become its OpenAPI text).
class MaintenanceWindow(BaseModel):
    id: str
    service_id: str | None = Field(
        description="the service it mutes; null with metric_id null: all"
    )
    metric_id: str | None = Field(description="the metric it mutes")
    start: datetime | None = Field(description="a one-off window's start; when a weekly one begins")
    end: datetime | None = Field(description="a one-off window's end; when a weekly one stops")
    weekly: WeeklySchedule | None
    reason: str
    created_at: datetime
    updated_at: datetime
    reach_pending: bool = Field(
        default=False,
        description="true while what this window changes in the past (muting the anomalies "
        "already stored in it, relearning its metrics) is still being applied by a worker",
    )


@dataclass(frozen=True)
class PendingReach:
    """What a window's reach into the past has left to do (common.maintenance.reach):
    `window` as stored now (a deleted one's last form), generation `seq` to apply, and
    what it covered before its changes since the last applied one (to relearn)."""

    owner_id: str
    window: MaintenanceWindow
    deleted: bool
    seq: int
    done: int
    covered_before: list[RelearnTarget]

    @property
    def pending(self) -> bool:
        return self.seq > self.done


@dataclass(frozen=True)
class MutedIncidents:
    """The open incidents a window's mute took members from, as its reach left them."""

    resolved: list[str]  # left with no member: resolved by 'maintenance'
    updated: list[str]  # left with some: open, one change people are told of
