"""A detection job as stored and shown: its record, the parameters it runs with, its summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from common.epoch import to_epoch_ms
from common.methods import MethodSettings

# "scan": the job of one metric by a periodic scan before sweeps kept one record for all
# (common.scans); such records are still read until they expire.
JobKind = Literal["detect", "scan"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed"})


class DetectionParams(MethodSettings):
    """What a job detects on, fixed at submission so that a re-run does the same work."""

    start: datetime | None = Field(default=None, description="inclusive; unset: no lower bound")
    end: datetime | None = Field(default=None, description="exclusive; unset: no upper bound")
    judge_from: datetime | None = Field(
        default=None,
        description="readings before this are history only, never stored as anomalies",
    )
    max_points: int = Field(default=200_000, gt=0, description="the newest readings read at most")

    # The record keeps datetimes (what the API shows); the core reads the window in ms.
    @property
    def start_ms(self) -> int | None:
        return None if self.start is None else to_epoch_ms(self.start)

    @property
    def end_ms(self) -> int | None:
        return None if self.end is None else to_epoch_ms(self.end)

    @property
    def judge_from_ms(self) -> int | None:
        return None if self.judge_from is None else to_epoch_ms(self.judge_from)


class LatestVerdict(BaseModel):
    """The seed's verdict on the newest reading of the window: more than sigma sample
    standard deviations from the window's mean."""

    timestamp: datetime
    value: float
    window_mean: float
    window_std_dev: float
    is_anomaly: bool
    method_is_anomaly: bool = Field(description="whether the job's method flagged this reading")


class JobSummary(BaseModel):
    method: str = Field(description="the method that ran (`auto` resolved), `-online` if online")
    method_params: dict[str, Any] = Field(
        description="parameters the method used, including inferred ones (period, window)"
    )
    points: int = Field(description="readings judged or used as history")
    flagged: int = Field(description="readings flagged as anomalous")
    events: int = Field(description="runs of consecutive flagged readings")
    anomalies_stored: int = Field(
        description="anomalies stored in the graph by this job (one per flagged reading, "
        "shared with any other job or scan that flagged it)"
    )
    anomalies_dropped: int = Field(
        default=0,
        description="flagged readings not stored: over JOB_MAX_ANOMALIES, the weakest are "
        "dropped and the strongest (highest score) kept",
    )
    anomalies_kept_min_score: float | None = Field(
        default=None, description="when some were dropped: the lowest score of those kept"
    )
    window_start: datetime | None = Field(description="timestamp of the first reading read")
    window_end: datetime | None = Field(description="timestamp of the last reading read")
    latest: LatestVerdict | None


class JobRecord(BaseModel):
    id: str
    kind: JobKind
    owner_id: str
    metric_id: str
    status: JobStatus = "queued"
    progress: float = Field(default=0.0, ge=0, le=1)
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = Field(default=None, description="on failure: what went wrong, for a person")
    params: DetectionParams
    summary: JobSummary | None = None
    attempts: int = Field(
        default=0,
        description="runs started: more than 1 after a worker died, or a retry while the "
        "graph store or Redis was unavailable",
    )
    worker_deaths: int = Field(
        default=0, description="runs that never ended: their worker died (killed, out of memory)"
    )
    worker: str | None = Field(default=None, description="host:pid of the last run")
    result_expires_at: datetime | None = None
    result_expired: bool = Field(
        default=False, description="the job succeeded but its result is no longer kept"
    )

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES
