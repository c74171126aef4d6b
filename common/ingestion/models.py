"""An ingest request once decoded (from the REST API, or an agent's protocol), and what it
did, series by series."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Self

from pydantic import BaseModel, Field

from common.metrics.models import NewReading

# What a metric's labels may hold: bounded, so that an agent's labels cannot bloat the store.
MAX_LABELS = 64
MAX_LABEL_NAME_CHARS = 100
MAX_LABEL_VALUE_CHARS = 1000


@dataclass(frozen=True)
class Series:
    """One metric's readings in an ingest request.

    The metric is named by `metric_id`, or by its service (`service_id`, or else
    `service_name`) and `metric_name`. `labels` are stored on a metric this request creates
    (an existing metric keeps its own). Readings carry their id: a reading re-sent with the
    same id is stored once, so a retried request stores nothing twice.
    """

    readings: Sequence[NewReading]
    metric_id: str | None = None
    service_id: str | None = None
    service_name: str | None = None
    metric_name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """The series as its sender named it, for messages."""
        if self.metric_id is not None:
            return f"metric {self.metric_id}"
        return f"{self.service_id or self.service_name}/{self.metric_name}"


@dataclass(frozen=True)
class IngestLimits:
    max_metrics_per_owner: int
    max_clock_skew_seconds: int


Reason = Literal[
    "invalid",  # 422: the series itself is malformed (no name, a bad value or label)
    "future_timestamp",  # 422: a reading is stamped beyond MAX_CLOCK_SKEW_SECONDS
    "duplicate_series",  # 422: an earlier series of the request names the same metric
    "not_found",  # 404: no such metric or service of the caller's (and not to be created)
    "ambiguous_service",  # 409: the caller has two services by that name
    "metric_limit",  # 429: creating the metric would pass MAX_METRICS_PER_OWNER
]


class SeriesError(BaseModel):
    """Why a series was refused; nothing of it was stored."""

    status: int = Field(description="the HTTP status this refusal alone would have had")
    reason: Reason
    message: str


class SeriesOutcome(BaseModel):
    """What became of one series of the request (in request order)."""

    index: int = Field(description="the series' position in the request")
    metric_id: str | None = Field(description="the metric its readings went to")
    created: bool = Field(default=False, description="the metric was created by this request")
    received: int = Field(description="readings in the series")
    stored: int = Field(default=0, description="readings that were new")
    duplicates: int = Field(default=0, description="readings whose id was already stored")
    ids: list[str] | None = Field(
        default=None,
        description="the id of each reading, in request order (null: the series could not be read)",
    )
    error: SeriesError | None = Field(default=None, description="why the series was refused")


class IngestReport(BaseModel):
    """What an ingest request did, in all and series by series."""

    received: int = Field(description="readings in the request")
    stored: int = Field(description="readings that were new")
    duplicates: int = Field(description="readings whose id was already stored (not changed)")
    refused: int = Field(description="readings of the refused series (nothing of them stored)")
    metrics_created: int = Field(description="metrics this request created")
    series: list[SeriesOutcome]

    @classmethod
    def of(cls, series: list[SeriesOutcome]) -> Self:
        return cls(
            received=sum(s.received for s in series),
            stored=sum(s.stored for s in series),
            duplicates=sum(s.duplicates for s in series),
            refused=sum(s.received for s in series if s.error is not None),
            metrics_created=sum(s.created for s in series),
            series=series,
        )

    def errors(self) -> list[SeriesError]:
        return [s.error for s in self.series if s.error is not None]
