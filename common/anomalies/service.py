"""A detection result's flagged readings as anomalies to store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from common.anomalies.models import NewAnomaly
from common.maintenance.repository import MaintenanceRepository
from common.maintenance.service import covered
from common.metrics.models import MetricRef, ReadingSeries
from common.scores import capped_score

if TYPE_CHECKING:  # the detection library imports scipy: only where detection runs
    from common.detection.result import DetectionResult


def _finite(value: float, fallback: float) -> float:
    return value if np.isfinite(value) else fallback


def anomalies_found(
    metric_id: str,
    series: ReadingSeries,
    output: DetectionResult,
    method: str,
    judge_from_ms: int | None,
) -> list[NewAnomaly]:
    """The flagged readings as graph anomalies, each with the span of its event.

    With `judge_from_ms` (scans), readings before it were history for the online judge,
    already scanned before: they are not stored again.
    """
    event_of = np.full(len(series), -1, dtype=np.int64)
    for number, event in enumerate(output.events):
        event_of[event.start_index : event.end_index + 1] = number
    flagged = np.flatnonzero(np.asarray(output.is_anomaly, dtype=bool))
    if judge_from_ms is not None:
        flagged = flagged[series.timestamps_ms[flagged] >= judge_from_ms]
    anomalies = []
    for index in flagged:
        value = float(series.values[index])
        event_number = int(event_of[index])
        kind = None
        if event_number >= 0:
            event = output.events[event_number]
            start_ms = int(series.timestamps_ms[event.start_index])
            end_ms = int(series.timestamps_ms[event.end_index])
            kind = event.kind
        else:  # a flag outside any event should not happen; the point is its own event
            start_ms = end_ms = int(series.timestamps_ms[index])
        anomalies.append(
            NewAnomaly(
                metric_id,
                series.ids[index],
                timestamp_ms=int(series.timestamps_ms[index]),
                value=value,
                expected=_finite(float(output.expected[index]), value),
                lower=_finite(float(output.lower[index]), value),
                upper=_finite(float(output.upper[index]), value),
                score=capped_score(float(output.score[index])),
                method=method,
                event_start_ms=start_ms,
                event_end_ms=end_ms,
                probability=_finite(float(output.probability[index]), 0.0),
                kind=kind.name if kind else None,
                summary=kind.summary if kind else None,
            )
        )
    return anomalies


def muted_in_windows(
    maintenance: MaintenanceRepository, metric: MetricRef, anomalies: Sequence[NewAnomaly]
) -> list[NewAnomaly]:
    """`anomalies`, those of readings in one of the metric's maintenance windows marked
    muted: they are stored as any other, but open or join no incident (so notify nobody)."""
    if not anomalies:
        return []
    timestamps_ms = np.array([a.timestamp_ms for a in anomalies], dtype=np.int64)
    windows = maintenance.of_metric(
        metric.owner_id,
        metric.service_id,
        metric.id,
        int(timestamps_ms.min()),
        int(timestamps_ms.max()) + 1,
    )
    inside = covered(windows, timestamps_ms)
    return [
        replace(a, muted=True) if mute else a for a, mute in zip(anomalies, inside, strict=True)
    ]


def strongest(anomalies: Sequence[NewAnomaly], cap: int) -> tuple[list[NewAnomaly], int]:
    """At most `cap` of `anomalies`: the highest scores (the earlier reading on a tie), in
    their original order; and how many were dropped."""
    if len(anomalies) <= cap:
        return list(anomalies), 0
    ranked = sorted(range(len(anomalies)), key=lambda i: (-anomalies[i].score, i))
    kept = sorted(ranked[:cap])
    return [anomalies[i] for i in kept], len(anomalies) - cap
