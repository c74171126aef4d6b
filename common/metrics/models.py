"""A metric, its readings as the API shows them, and readings as the core handles them
(epoch milliseconds and numpy columns)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pydantic import BaseModel, Field

from common.methods import MetricDetection


class Reading(BaseModel):
    id: str
    timestamp: datetime
    value: float


class Metric(BaseModel):
    id: str
    name: str
    description: str | None = None
    service_id: str
    created_at: datetime
    latest_reading: Reading | None = None
    detection: MetricDetection = Field(
        default_factory=MetricDetection,
        description="the metric's own detection settings (PATCH to change; null: the default)",
    )


@dataclass(frozen=True)
class MetricRef:
    """A metric with its owner: what workers and scans need to act for a user."""

    id: str
    name: str
    service_id: str
    owner_id: str
    latest_ms: int | None = None  # the newest reading's timestamp


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
