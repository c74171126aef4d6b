"""A metric, its readings as the API shows them, and readings as the core handles them
(epoch milliseconds and numpy columns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pydantic import BaseModel, Field

from common.ids import reading_id
from common.methods import MetricDetection

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
    last_judged_at: datetime | None = Field(
        default=None, description="when a periodic scan last judged readings of this metric"
    )
    judged_through: datetime | None = Field(
        default=None, description="the newest reading scans have judged (its timestamp)"
    )
    scan_lag_seconds: float | None = Field(
        default=None,
        description="at the last scan: from the newest reading's arrival to its judgement; "
        "while its detector state's rebuild waits for a later sweep (SCAN_REBUILD_READINGS), "
        "at least the time its readings have waited so far, growing until a sweep judges it",
    )
    scan_waiting_since: datetime | None = Field(
        default=None,
        description="while its detector state's rebuild waits for a later sweep (after a "
        "settings change or an upgrade; SCAN_REBUILD_READINGS): since when, at the latest "
        "(scan_lag_seconds counts from it); null: not waiting",
    )
    scan_note: str | None = Field(
        default=None, description="what scans said of this metric, once (e.g. too few readings)"
    )
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

    @classmethod
    def sent(cls, client_id: str | None, timestamp_ms: int, value: float) -> NewReading:
        """A reading as a client sent it. Without an id of its own it is named by its time
        and value (common.ids.reading_id): sent again, it is the same reading, and a
        compacted chunk need not keep its id."""
        return cls(client_id or reading_id(timestamp_ms, value), timestamp_ms, value)


@dataclass(frozen=True)
class ReadingSeries:
    """A window of a metric's readings in time order, as arrays for detection."""

    ids: list[str]
    timestamps_ms: np.ndarray  # int64
    values: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.ids)


EMPTY_SERIES = ReadingSeries(ids=[], timestamps_ms=np.zeros(0, np.int64), values=np.zeros(0))


def concat(parts: Sequence[ReadingSeries]) -> ReadingSeries:
    """Series one after the other (each in order, each after the one before)."""
    parts = [part for part in parts if len(part)]
    if not parts:
        return EMPTY_SERIES
    if len(parts) == 1:
        return parts[0]
    return ReadingSeries(
        ids=[i for part in parts for i in part.ids],
        timestamps_ms=np.concatenate([part.timestamps_ms for part in parts]),
        values=np.concatenate([part.values for part in parts]),
    )


def take(series: ReadingSeries, keep: np.ndarray | slice) -> ReadingSeries:
    """The readings of a series a boolean mask or a slice keeps."""
    if isinstance(keep, slice):
        ids = series.ids[keep]
    else:
        ids = [i for i, kept in zip(series.ids, keep.tolist(), strict=True) if kept]
    return ReadingSeries(
        ids=ids, timestamps_ms=series.timestamps_ms[keep], values=series.values[keep]
    )


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


@dataclass(frozen=True)
class ChunkSummary:
    """A ReadingChunk as its summary: which readings it holds, without its columns."""

    id: str
    version: int
    first_ms: int
    last_ms: int
    readings: int
    low: float
    high: float


@dataclass(frozen=True)
class History:
    """A metric's compacted boundary (readings before it are in chunks; None: nothing
    compacted yet) and the chunks overlapping a window, oldest first."""

    through: int | None
    chunks: list[ChunkSummary]


@dataclass(frozen=True)
class CompactionTarget:
    """A metric as compaction and retention see it."""

    id: str
    through: int | None  # the compacted boundary
    latest_ms: int | None  # the newest reading's timestamp (always left raw)


# --- what periodic scans read and write of a metric (common.scans) -------------------------


@dataclass(frozen=True)
class DueMetric:
    """A metric a sweep may have to judge: its newest reading and how far scans judged it."""

    id: str
    owner_id: str
    latest_ms: int | None
    judged_through_ms: int | None  # the newest reading judged (None: never judged)
    late_from_ms: int | None  # readings at or after it, up to judged_through, are not judged
    detection: MetricDetection  # the metric's own settings: the state a sweep expects
    compacted_through_ms: int | None = None  # readings before it are in chunks
    appended_at_ms: int | None = None  # server time of its last append
    judged_at_ms: int | None = None  # server time of its last judgement
    # Since when its state rebuild waits for a later sweep (MARK_REBUILDS_WAITING): a wait
    # only while after judged_at.
    rebuild_waiting_since_ms: int | None = None

    @property
    def waiting_since_ms(self) -> int | None:
        """When its current wait for a rebuild began; None: not waiting."""
        return rebuild_waiting_since(self.rebuild_waiting_since_ms, self.judged_at_ms)


def rebuild_waiting_since(marked_ms: int | None, judged_at_ms: int | None) -> int | None:
    """Since when a metric's state rebuild waits for a later sweep, from what
    MARK_REBUILDS_WAITING marked and its last judgement (a wait is over once a scan judged
    the metric after it began); None: not waiting."""
    if marked_ms is None or (judged_at_ms is not None and marked_ms <= judged_at_ms):
        return None
    return marked_ms


@dataclass(frozen=True)
class ScanRead:
    """A metric as a scan batch reads it: its facts, and its readings after the last one
    judged (up to the batch's horizon, at most the batch's cap)."""

    metric: MetricRef
    latest_ms: int | None  # the newest reading's timestamp
    appended_at_ms: int | None  # server time of the last append
    judged_through_ms: int | None
    late_from_ms: int | None
    late_seq: int  # late gaps stored so far (see APPEND_READINGS); compared for equality only
    compacted_through_ms: int | None  # the compacted boundary: older readings are in chunks
    scan_note: str | None
    detection: MetricDetection  # the metric's own settings, over the SCAN_* ones
    readings: ReadingSeries


# Keyword-only: ten of its fields are ints or None, so a field added or moved would shift
# every positional call silently (it did: the fleet bench's copy broke unseen).
@dataclass(frozen=True, kw_only=True)
class ScanMark:
    """What a scan judged of a metric: the readings after `after_ms` up to `through_ms`
    (`judged` of them: 0 for a mark that only says `note`; `raw` of those in the raw
    window as the scan read it, the rest read from chunks), having seen `late_seq` late
    appends and the last append at `appended_at_ms`."""

    metric_id: str
    after_ms: int | None
    through_ms: int | None
    judged: int
    raw: int
    compacted_through_ms: int | None  # the boundary `raw` was counted from, as read
    late_seq: int
    appended_at_ms: int | None  # the metric's last append as the scan read it
    lag_ms: int | None  # the newest reading's arrival to its judgement; None: not caught up
    note: str | None
