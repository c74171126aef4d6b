"""A metric, its readings as the API shows them, and readings as the core handles them
(epoch milliseconds and numpy columns)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pydantic import BaseModel, Field

# |value| <= 1e308: the embedded FalkorDB answers doubles to 15 significant digits, which
# rounds values near the float maximum up to infinity on the way back.
MAX_VALUE = 1e308


class Reading(BaseModel):
    id: str
    timestamp: datetime
    value: float


class Metric(BaseModel):
    id: str
    name: str
    description: str | None = None
    service_id: str
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="what the series is beside its name (host, mode, ...), as its agent sent "
        "it; set when the metric is created",
    )
    created_at: datetime
    latest_reading: Reading | None = None


@dataclass(frozen=True)
class MetricRef:
    """A metric with its owner: what workers and scans need to act for a user."""

    id: str
    name: str
    service_id: str
    owner_id: str
    latest_ms: int | None = None  # the newest reading's timestamp


@dataclass(frozen=True)
class FoundMetric:
    """A metric an ingest request named, found (or created) for its owner: where its
    readings go. `latest`: its newest reading's (timestamp ms, id), None if it has none."""

    id: str
    latest: tuple[int, str] | None
    created: bool = False


ServiceKey = tuple[str | None, str | None]  # a service by id, or else by name


@dataclass(frozen=True)
class NamedMetric:
    """What an owner's service `service` (an index into the services asked for) holds under
    the metric name `name`: the metric, or None."""

    service: int
    service_id: str
    name: str
    metric: FoundMetric | None


@dataclass(frozen=True)
class WantedMetric:
    """A metric an ingest request names that its owner does not have: in the service
    `service_id`, or the one named `service_name` (made if it has none by that name)."""

    service_id: str | None
    service_name: str | None
    name: str
    labels: dict[str, str]


@dataclass
class CreatedMetrics:
    """What creating wanted metrics did, per wanted metric: the metric (None: refused) and
    how many of the owner's services it matched; and how many metrics the owner had."""

    metrics: list[FoundMetric | None]
    services: list[int]
    owned: int


@dataclass(frozen=True)
class NewReading:
    """A reading on its way into the graph (already validated, time in epoch ms)."""

    id: str
    timestamp_ms: int
    value: float


@dataclass(frozen=True)
class ReadingSeries:
    """A window of a metric's readings in time order, as arrays for detection."""

    ids: list[str]
    timestamps_ms: np.ndarray  # int64
    values: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class BucketSeries:
    """A window cut into equal spans of time: per non-empty bucket, its number from the
    window's start, the lowest and highest value and how many readings fell in it."""

    index: np.ndarray  # int64
    low: np.ndarray  # float64
    high: np.ndarray  # float64
    readings: np.ndarray  # int64


@dataclass(frozen=True)
class ChainLink:
    """One reading of a metric's chain as the graph links it (for invariant checks)."""

    id: str
    timestamp_ms: int
    next_ids: list[str]


@dataclass(frozen=True)
class Chain:
    links: list[ChainLink]
    latest_ids: frozenset[str | None]  # what LATEST_READING points at (one id, if whole)
