"""Draw a stored job result with the detection library's own plot."""

from __future__ import annotations

import numpy as np

from common.jobs.results import PointColumns, ResultMeta


def _floats(column: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in column], dtype=np.float64)


def plot_title(meta: ResultMeta) -> str:
    """What a person calls the metric: its service's and its own name (the plot adds the
    method). Results stored before the names were kept show the metric's id."""
    if meta.metric_name is None:
        return f"metric {meta.metric_id}"
    if meta.service_name is None:
        return meta.metric_name
    return f"{meta.service_name} / {meta.metric_name}"


def render_result_png(columns: PointColumns, meta: ResultMeta) -> bytes:
    """The result read back from Redis as the detection result it was, drawn."""
    # The detection library (scipy, matplotlib) is imported only when a plot is drawn.
    from common.detection.plot import render_png
    from common.detection.result import AnomalyEvent, DetectionResult

    result = DetectionResult(
        method=meta.method,
        params=meta.method_params,
        expected=_floats(columns.expected),
        lower=_floats(columns.lower),
        upper=_floats(columns.upper),
        score=_floats(columns.score),
        probability=_floats(columns.probability),
        is_anomaly=np.array(columns.is_anomaly, dtype=bool),
        events=[
            AnomalyEvent(
                start_index=event.start_index,
                end_index=event.end_index,
                peak_index=event.peak_index,
                peak_score=np.inf if event.peak_score is None else event.peak_score,
            )
            for event in meta.events
        ],
    )
    return render_png(
        np.array(columns.timestamp_ms, dtype=np.int64),
        _floats(columns.value),
        result,
        plot_title(meta),
    )
