"""An anomaly on its way into the graph (epoch ms, its id made once), and as stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from common.ids import anomaly_id

Verdict = Literal["false_positive", "confirmed"]


@dataclass(frozen=True)
class NewAnomaly:
    """One flagged reading as detection found it, with the span of its event.

    Its id is derived from (metric, reading, method) once, by `found`, and carried: the
    graph merges on it (a re-run updates, never duplicates) and incidents name it.
    """

    id: str
    reading_id: str
    timestamp_ms: int
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    method: str
    event_start_ms: int
    event_end_ms: int
    probability: float | None = None  # how often normal behaviour deviates this much
    kind: str | None = None  # the kind of the event it belongs to
    summary: str | None = None  # the event in words and numbers

    @classmethod
    def found(
        cls,
        metric_id: str,
        reading_id: str,
        *,
        timestamp_ms: int,
        value: float,
        expected: float,
        lower: float,
        upper: float,
        score: float,
        method: str,
        event_start_ms: int,
        event_end_ms: int,
        probability: float | None = None,
        kind: str | None = None,
        summary: str | None = None,
    ) -> NewAnomaly:
        return cls(
            id=anomaly_id(metric_id, reading_id, method),
            reading_id=reading_id,
            timestamp_ms=timestamp_ms,
            value=value,
            expected=expected,
            lower=lower,
            upper=upper,
            score=score,
            method=method,
            event_start_ms=event_start_ms,
            event_end_ms=event_end_ms,
            probability=probability,
            kind=kind,
            summary=summary,
        )


# A stored anomaly, as the API shows it (no docstring: it would become its OpenAPI text).
class Anomaly(BaseModel):
    reading_id: str
    timestamp: datetime
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    method: str
    event_start: datetime
    event_end: datetime
    probability: float | None = Field(
        default=None, description="how often the series' normal behaviour deviates this much"
    )
    kind: str | None = Field(default=None, description="the kind of the event it belongs to")
    summary: str | None = Field(default=None, description="the event in words and numbers")
    id: str
    metric_id: str
    detected_at: datetime
    job_id: str | None = None
    feedback: Verdict | None = None  # what a person said of it (POST .../feedback)
    feedback_at: datetime | None = None
