"""An anomaly on its way into the graph (epoch ms, its id made once), and as stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from common.ids import anomaly_id
from common.scores import Score

Verdict = Literal["false_positive", "confirmed"]
# The most anomalies with a verdict (or in an open incident) a metric's detector is taught
# from: its newest (common.anomalies.lessons).
LESSONS_PER_METRIC = 200


@dataclass(frozen=True)
class NewAnomaly:
    """One flagged reading as one judgement found it, with the span of its event.

    Its id is derived from (metric, reading) here, unless given: the graph keeps one anomaly
    per reading whoever flags it, and `AnomalyRepository.save` returns each with the id it
    is stored under (an older anomaly of the reading keeps its own), which incidents name.
    """

    metric_id: str
    reading_id: str
    method: str
    timestamp_ms: int
    score: float
    value: float
    expected: float
    lower: float
    upper: float
    event_start_ms: int
    event_end_ms: int
    probability: float | None = None  # how often normal behaviour deviates this much
    kind: str | None = None  # the kind of the event it belongs to
    summary: str | None = None  # the event in words and numbers
    muted: bool = False  # in a maintenance window: stored, but in no incident
    id: str = field(default="")

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", anomaly_id(self.metric_id, self.reading_id))


# A stored anomaly, as the API shows it (no docstring: it would become its OpenAPI text).
class Anomaly(BaseModel):
    reading_id: str
    timestamp: datetime
    value: float
    expected: float
    lower: float
    upper: float
    score: Score
    method: str = Field(description="the method whose evidence is kept (the highest score)")
    methods: list[str] = Field(description="every method that flagged the reading")
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
    job_id: str | None = Field(default=None, description="the job whose evidence is kept")
    feedback: Verdict | None = None  # what a person said of it (POST .../feedback)
    feedback_at: datetime | None = None
    muted: bool = Field(
        default=False,
        description="found in a maintenance window: in no incident, notifies nobody",
    )


@dataclass(frozen=True)
class Lesson:
    """One anomaly with a verdict, or in an open incident, as stored: what its metric's
    detector is taught from (common.anomalies.lessons)."""

    timestamp_ms: int
    event_start_ms: int
    event_end_ms: int
    kind: str | None
    value: float
    expected: float
    probability: float | None
    feedback: str | None
    in_open_incident: bool
