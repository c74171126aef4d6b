"""Draw a stored job result with the detection library's own plot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from common.jobs.results import PointColumns


@dataclass(frozen=True)
class StoredEvent:
    start_index: int
    end_index: int
    peak_index: int
    peak_score: float


@dataclass(frozen=True)
class StoredDetection:
    """A detection result read back from Redis, with the attributes `render_png` reads."""

    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    score: np.ndarray
    is_anomaly: np.ndarray
    events: list[StoredEvent]
    method: str
    params: dict[str, Any]


def _floats(column: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in column], dtype=np.float64)


def render_result_png(columns: PointColumns, meta: dict[str, Any], title: str) -> bytes:
    from common.detection.plot import render_png

    result = StoredDetection(
        expected=_floats(columns.expected),
        lower=_floats(columns.lower),
        upper=_floats(columns.upper),
        score=_floats(columns.score),
        is_anomaly=np.array(columns.is_anomaly, dtype=bool),
        events=[
            StoredEvent(
                e["start_index"],
                e["end_index"],
                e["peak_index"],
                np.inf if e["peak_score"] is None else e["peak_score"],
            )
            for e in meta["events"]
        ],
        method=meta["method"],
        params=meta["method_params"],
    )
    png: bytes = render_png(
        np.array(columns.timestamp_ms, dtype=np.int64),
        _floats(columns.value),
        result,  # type: ignore[arg-type, unused-ignore]
        title,
    )
    return png
