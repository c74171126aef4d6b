"""A sweep as its owners see it (GET /api/scans) and as a whole (logs, benchmarks)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


# One sweep as one owner sees it (no docstring: it would become its OpenAPI text).
class OwnerSweep(BaseModel):
    id: str
    started_at: datetime
    finished: bool = Field(description="every batch of the sweep (all owners) has finished")
    last_batch_at: datetime | None = Field(
        description="when the last batch with your metrics finished (null: none had any: "
        "their detector states' rebuilds all wait, see rebuilds_waiting)"
    )
    duration_seconds: float | None = Field(description="from the sweep's start to last_batch_at")
    metrics_judged: int = Field(description="your metrics whose new readings were judged")
    readings_judged: int
    anomalies: int = Field(description="anomalies stored")
    failures: int = Field(description="metrics whose judging failed (see last_error)")
    skipped: int = Field(
        description="metrics too short to judge, counted once (the metric's scan_note says so)"
    )
    lag_seconds_mean: float | None = Field(
        description="from each metric's newest reading's arrival to its judgement"
    )
    lag_seconds_max: float | None
    rebuilds_waiting: int = Field(
        default=0,
        description="your metrics whose detector state must be rebuilt (after a settings "
        "change or an upgrade, or late readings) and that this sweep left for a later one: "
        "each sweep rebuilds at most SCAN_REBUILD_READINGS readings' worth, the longest "
        "waiting first; a waiting metric's scan_lag_seconds grows until it is judged",
    )
    last_error: str | None = None


class SweepTotals(BaseModel):
    """A sweep over every owner."""

    id: str
    started_at: datetime
    finished_at: datetime | None
    batches: int
    batches_done: int
    metrics_queued: int
    metrics_pending: int = Field(description="left for later: their previous batch was pending")
    rebuilds_waiting: int = Field(
        default=0, description="state rebuilds left for a later sweep (SCAN_REBUILD_READINGS)"
    )
    metrics_judged: int
    readings_judged: int
    anomalies: int
    failures: int
    skipped: int
    lag_seconds_mean: float | None
    lag_seconds_max: float | None
    batches_by_worker: dict[str, int]
    phase_seconds: dict[str, float] = Field(
        description="the batches' time by phase (common.scans.records.PHASES): the graph's "
        "reads (read_new, read_lessons, read_history), detect, state_codec (the states' "
        "bytes), redis (states and record), the graph's writes (write_anomalies: anomalies "
        "and incidents; write_marks)"
    )
