"""A job's result as stored in Redis: detection output for every reading, in chunks.

The result holds its meta document (ResultMeta: method, parameters, events, counts) and
the points in chunks of CHUNK_POINTS, each a JSON object of columns. A page of points
reads only the chunks it covers. Values that are not numbers (NaN where a point was not
judged, say) are stored as null, so every chunk is plain JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, Field

from common.metrics.models import ReadingSeries

if TYPE_CHECKING:  # the detection library imports scipy: only where detection runs
    from common.detection.kinds import EventKind
    from common.detection.result import AnomalyEvent, DetectionResult

CHUNK_POINTS = 1000
FLOAT_COLUMNS = ("value", "expected", "lower", "upper", "score", "probability")


def json_floats(values: np.ndarray) -> list[float | None]:
    """Floats as JSON can carry them: NaN and ±inf become null."""
    floats = np.asarray(values, dtype=np.float64).astype(object)
    floats[~np.isfinite(np.asarray(values, dtype=np.float64))] = None
    column: list[float | None] = floats.tolist()
    return column


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def plain(value: Any) -> Any:
    """numpy scalars and arrays in method params, as JSON types."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class StoredEvent(BaseModel):
    """An event of a stored result: positions in its points, their times, and its kind."""

    start_index: int
    end_index: int
    peak_index: int
    start_ms: int
    end_ms: int
    peak_ms: int
    peak_score: float | None = Field(description="null: infinite (a reading off a zero spread)")
    # Results stored before events were typed have none of these.
    kind: str | None = None
    summary: str | None = None
    magnitude: float | None = None
    sigmas: float | None = None

    @classmethod
    def of(cls, event: AnomalyEvent, timestamps_ms: np.ndarray) -> StoredEvent:
        kind: EventKind | None = event.kind
        return cls(
            start_index=int(event.start_index),
            end_index=int(event.end_index),
            peak_index=int(event.peak_index),
            start_ms=int(timestamps_ms[event.start_index]),
            end_ms=int(timestamps_ms[event.end_index]),
            peak_ms=int(timestamps_ms[event.peak_index]),
            peak_score=finite_or_none(float(event.peak_score)),
            kind=None if kind is None else kind.name,
            summary=None if kind is None else kind.summary,
            magnitude=None if kind is None else finite_or_none(float(kind.magnitude)),
            sigmas=None if kind is None else finite_or_none(float(kind.sigmas)),
        )


class ResultMeta(BaseModel):
    """What a stored result says about itself, beside its points."""

    job_id: str
    metric_id: str
    # The names when the job ran, for titles (results stored before they were kept: none).
    service_name: str | None = None
    metric_name: str | None = None
    method: str = Field(description="the method that ran (`auto` resolved), `-online` if online")
    method_params: dict[str, Any]
    total: int = Field(description="points in the result")
    flagged: int
    chunk_points: int = Field(description="points per stored chunk")
    events: list[StoredEvent]


def encode_result(
    job_id: str,
    metric_id: str,
    series: ReadingSeries,
    output: DetectionResult,
    method: str,
    *,
    service_name: str | None,
    metric_name: str | None,
) -> tuple[ResultMeta, list[str]]:
    """The result's meta document and its chunks of points, ready for ResultStore.save."""
    columns: dict[str, list[Any]] = {
        "timestamp_ms": series.timestamps_ms.astype(np.int64).tolist(),
        "reading_id": list(series.ids),
        "value": json_floats(series.values),
        "expected": json_floats(output.expected),
        "lower": json_floats(output.lower),
        "upper": json_floats(output.upper),
        "score": json_floats(output.score),
        "probability": json_floats(output.probability),
        "is_anomaly": np.asarray(output.is_anomaly, dtype=bool).tolist(),
    }
    total = len(series)
    chunks = [
        json.dumps({name: column[start : start + CHUNK_POINTS] for name, column in columns.items()})
        for start in range(0, total, CHUNK_POINTS)
    ]
    meta = ResultMeta(
        job_id=job_id,
        metric_id=metric_id,
        service_name=service_name,
        metric_name=metric_name,
        method=method,
        method_params=plain(output.params),
        total=total,
        flagged=int(np.count_nonzero(output.is_anomaly)),
        chunk_points=CHUNK_POINTS,
        events=[StoredEvent.of(event, series.timestamps_ms) for event in output.events],
    )
    return meta, chunks


@dataclass(frozen=True)
class PointColumns:
    """A run of stored points as columns (a page, or the whole result for a plot)."""

    timestamp_ms: list[int]
    reading_id: list[str]
    value: list[float | None]
    expected: list[float | None]
    lower: list[float | None]
    upper: list[float | None]
    score: list[float | None]
    probability: list[float | None]
    is_anomaly: list[bool]

    def rows(self) -> list[dict[str, Any]]:
        names = ("timestamp_ms", "reading_id", *FLOAT_COLUMNS, "is_anomaly")
        return [
            dict(zip(names, row, strict=True))
            for row in zip(*(getattr(self, n) for n in names), strict=True)
        ]


def chunk_span(offset: int, limit: int, total: int, chunk_points: int) -> list[int]:
    """Indexes of the chunks that hold points [offset, offset + limit)."""
    stop = min(offset + limit, total)
    if offset >= stop:
        return []
    return list(range(offset // chunk_points, (stop - 1) // chunk_points + 1))


def slice_points(
    chunks: list[dict[str, Any]], first_chunk: int, offset: int, limit: int, chunk_points: int
) -> PointColumns:
    """Points [offset, offset + limit) out of consecutive chunks starting at `first_chunk`."""
    merged: dict[str, list[Any]] = {name: [] for name in PointColumns.__dataclass_fields__}
    for chunk in chunks:
        for name, column in merged.items():
            # Results stored before a column existed (probability) read it as nulls.
            column.extend(chunk.get(name) or [None] * len(chunk["timestamp_ms"]))
    start = offset - first_chunk * chunk_points
    window = {name: column[start : start + limit] for name, column in merged.items()}
    return PointColumns(**window)


# ResultStore.chunks for one job: chunks by index, or None once the result is gone.
ChunkReader = Callable[[Sequence[int]], list[dict[str, Any]] | None]


def chunks_in_window(
    read: ChunkReader, total: int, chunk_points: int, start_ms: int, end_ms: int
) -> tuple[int, list[dict[str, Any]]] | None:
    """The consecutive chunks holding the points with start_ms <= timestamp < end_ms, and
    the index of the first; None if the result expired meanwhile.

    Points are stored in timestamp order, so two binary searches over the chunks' first and
    last timestamps find the window: a chart zoomed into a long result reads a few chunks
    (about 2·log2 of their number, plus the window's own) instead of parsing them all.
    """
    chunk_count = -(-total // chunk_points)
    read_so_far: dict[int, dict[str, Any]] = {}

    def timestamps(index: int) -> list[int] | None:
        if index not in read_so_far:
            chunk = read([index])
            if chunk is None:
                return None
            read_so_far[index] = chunk[0]
        column: list[int] = read_so_far[index]["timestamp_ms"]
        return column

    def first_where(holds: Callable[[list[int]], bool]) -> int | None:
        """The first chunk index whose timestamps satisfy `holds` (false, then true)."""
        low, high = 0, chunk_count
        while low < high:
            middle = (low + high) // 2
            column = timestamps(middle)
            if column is None:
                return None
            if holds(column):
                high = middle
            else:
                low = middle + 1
        return low

    if start_ms >= end_ms or chunk_count == 0:
        return 0, []
    first = first_where(lambda column: column[-1] >= start_ms)  # ends at or after the start
    after = first_where(lambda column: column[0] >= end_ms)  # starts at or after the end
    if first is None or after is None:
        return None
    if first >= after:
        return 0, []
    missing = [i for i in range(first, after) if i not in read_so_far]
    chunks = read(missing)
    if chunks is None:
        return None
    read_so_far.update(zip(missing, chunks, strict=True))
    return first, [read_so_far[i] for i in range(first, after)]
