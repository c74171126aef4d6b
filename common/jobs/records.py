"""Job records and results in Redis: what the web shows and the worker updates.

A record is one JSON document under its own key, kept for JOB_RECORD_TTL_SECONDS. Its
result (the per-point series, which can be megabytes) is a separate hash kept for
RESULT_TTL_SECONDS, so the record outlives the result and can say that it expired.
Each owner has a sorted set of job ids by submission time, for listing recent jobs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import redis
from pydantic import BaseModel, Field
from redis.typing import EncodableT, FieldT

from common.errors import DependencyUnavailableError, NotFoundError
from common.jobs import keys
from common.settings import Settings

JobKind = Literal["detect", "scan"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
FINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed"})
Method = Literal["rolling", "stl", "auto"]
REDIS = "redis"
# Optimistic updates of one record retried at most this often when another writer races.
MAX_UPDATE_ATTEMPTS = 50


def utc_now() -> datetime:
    return datetime.now(UTC)


# The default detector's settings, as a job's params and as the API's request take them.
Sensitivity = Annotated[
    float | None,
    Field(
        gt=0,
        lt=0.1,
        description="auto: alarm probability; at most about this share of readings alarm "
        "on normal data (unset: 3e-4, about 3 per 10,000)",
    ),
]
Quiet = Annotated[
    int | None,
    Field(ge=0, le=100_000, description="auto: readings after an alarm without a new one (50)"),
]


class DetectionParams(BaseModel):
    """What a job detects on, fixed at submission so that a re-run does the same work."""

    method: Method = "auto"
    sigma: float | None = Field(
        default=None,
        gt=0,
        description="rolling/STL: bounds are expected ± sigma × spread (unset: 3); auto: "
        "the tail probability of sigma normal standard deviations, instead of sensitivity",
    )
    sensitivity: Sensitivity = None
    quiet: Quiet = None
    window: int | None = Field(default=None, ge=2, description="rolling window in readings")
    robust: bool = Field(default=False, description="median/MAD (rolling) or robust STL")
    period: int | None = Field(
        default=None, ge=2, description="seasonal period in readings (STL); inferred if unset"
    )
    online: bool = Field(default=False, description="judge each reading only from earlier ones")
    start: datetime | None = Field(default=None, description="inclusive; unset: no lower bound")
    end: datetime | None = Field(default=None, description="exclusive; unset: no upper bound")
    judge_from: datetime | None = Field(
        default=None,
        description="scans: readings before this are history only, never stored as anomalies",
    )
    max_points: int = Field(default=200_000, gt=0, description="the newest readings read at most")


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
    anomalies_stored: int = Field(description="anomalies stored in the graph by this job")
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
    attempts: int = Field(default=0, description="runs started (more than 1: a worker died)")
    worker: str | None = Field(default=None, description="host:pid of the last run")
    result_expires_at: datetime | None = None
    result_expired: bool = Field(
        default=False, description="the job succeeded but its result is no longer kept"
    )

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


def record_from_stored(raw: bytes | str, result_kept: bool) -> JobRecord:
    """A stored record, saying whether its result has expired."""
    record = JobRecord.model_validate_json(raw)
    if record.status == "succeeded" and not result_kept:
        record.result_expired = True
    return record


@dataclass(frozen=True)
class JobPage:
    records: list[JobRecord]
    next_offset: int | None  # position in the owner's list to continue from


@contextmanager
def redis_errors() -> Iterator[None]:
    """Redis that cannot be reached is a dependency outage (503), not a bug (500)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise DependencyUnavailableError(REDIS, str(exc)) from exc
    except redis.ResponseError as exc:
        if "LOADING" in str(exc) or "MISCONF" in str(exc):
            raise DependencyUnavailableError(REDIS, str(exc)) from exc
        raise


class JobStore:
    """Job records and results over one Redis client. Every Redis error that means
    "unreachable" comes out as DependencyUnavailableError("redis", ...)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        record_ttl_seconds: int,
        result_ttl_seconds: int,
        list_max: int = 1000,
    ):
        self.redis = client
        self.record_ttl_seconds = record_ttl_seconds
        self.result_ttl_seconds = result_ttl_seconds
        self.list_max = list_max

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> JobStore:
        return cls(
            client,
            record_ttl_seconds=settings.job_record_ttl_seconds,
            result_ttl_seconds=settings.result_ttl_seconds,
            list_max=settings.job_list_max,
        )

    # --- records ------------------------------------------------------------------------
    def create(self, record: JobRecord) -> JobRecord:
        score = record.submitted_at.timestamp() * 1000
        oldest_kept = (time.time() - self.record_ttl_seconds) * 1000
        owner_key = keys.owner_jobs(record.owner_id)
        with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.job(record.id), record.model_dump_json(), ex=self.record_ttl_seconds)
            pipe.zadd(owner_key, {record.id: score})
            # The list forgets jobs whose records expired, and keeps at most list_max.
            pipe.zremrangebyscore(owner_key, "-inf", oldest_kept)
            pipe.zremrangebyrank(owner_key, 0, -self.list_max - 1)
            pipe.expire(owner_key, self.record_ttl_seconds)
            pipe.execute()
        return record

    def get(self, job_id: str) -> JobRecord | None:
        with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.job(job_id))
            pipe.exists(keys.job_result(job_id))
            raw, result_kept = pipe.execute()
        return None if raw is None else record_from_stored(raw, bool(result_kept))

    def get_owned(self, owner_id: str, job_id: str) -> JobRecord:
        """The owner's job; another user's job is not found, exactly like a missing one."""
        record = self.get(job_id)
        if record is None or record.owner_id != owner_id:
            raise NotFoundError(f"job {job_id} not found")
        return record

    def list_owned(
        self, owner_id: str, limit: int = 50, offset: int = 0, kind: JobKind | None = None
    ) -> JobPage:
        """The owner's jobs, newest first, from position `offset` of their list on.

        Positions count every listed job, whether it matches `kind` or its record expired,
        so `next_offset` continues right after the last job returned: following it never
        repeats or skips a job. It is None when no further job matches.
        """
        records: list[JobRecord] = []
        owner_key = keys.owner_jobs(owner_id)
        batch = max(limit + 1, 100)
        position = last_position = offset
        next_offset: int | None = None
        # The list holds at most list_max ids, so this reads a bounded number of batches.
        while next_offset is None:
            with redis_errors():
                ids = [
                    i.decode() if isinstance(i, bytes) else str(i)
                    for i in self.redis.zrevrange(owner_key, position, position + batch - 1)
                ]
            if not ids:
                break
            with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.get(keys.job(job_id))
                    pipe.exists(keys.job_result(job_id))
                answers = pipe.execute()
            for index, (raw, kept) in enumerate(zip(answers[::2], answers[1::2], strict=True)):
                if raw is None:
                    continue  # expired
                record = record_from_stored(raw, bool(kept))
                if kind is not None and record.kind != kind:
                    continue
                if len(records) == limit:  # one more matches: there is a next page
                    next_offset = last_position + 1
                    break
                records.append(record)
                last_position = position + index
            position += len(ids)
        return JobPage(records=records, next_offset=next_offset)

    def update(
        self, job_id: str, change: Callable[[JobRecord], JobRecord | None]
    ) -> JobRecord | None:
        """Apply `change` to the stored record atomically (optimistic, retried on a race).

        `change` returns the new record, or None to leave it as it is. Returns the record
        as stored afterwards; None if there is no such job (it expired, or never was).
        """
        key = keys.job(job_id)
        with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_UPDATE_ATTEMPTS):
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.unwatch()
                        return None
                    current = JobRecord.model_validate_json(raw)
                    changed = change(current.model_copy(deep=True))
                    if changed is None:
                        pipe.unwatch()
                        return current
                    pipe.multi()
                    if changed.is_final:
                        # Counted from the end, so the record outlives its result.
                        pipe.set(key, changed.model_dump_json(), ex=self.record_ttl_seconds)
                        pipe.publish(keys.job_finished_channel(job_id), changed.status)
                    else:
                        pipe.set(key, changed.model_dump_json(), keepttl=True)
                    pipe.execute()
                    return changed
                except redis.WatchError:
                    continue
        # Something rewrites the record without pause: back off (the worker retries later,
        # the web answers 503) rather than spin.
        raise DependencyUnavailableError(
            REDIS, f"job {job_id} changed {MAX_UPDATE_ATTEMPTS} times while being updated"
        )

    def mark_running(self, job_id: str, worker: str) -> JobRecord | None:
        """Start a run (again, if a worker died during the last one); final jobs stay final."""

        def start(record: JobRecord) -> JobRecord | None:
            if record.is_final:
                return None
            record.status = "running"
            record.attempts += 1
            record.progress = 0.05
            record.started_at = utc_now()
            record.worker = worker
            record.error = None
            return record

        return self.update(job_id, start)

    def set_progress(self, job_id: str, progress: float) -> JobRecord | None:
        def advance(record: JobRecord) -> JobRecord | None:
            if record.status != "running":
                return None
            record.progress = max(record.progress, min(progress, 1.0))
            return record

        return self.update(job_id, advance)

    def mark_queued(self, job_id: str, note: str) -> JobRecord | None:
        """Back to the queue (a retry is scheduled); `note` says why, in `error`."""

        def requeue(record: JobRecord) -> JobRecord | None:
            if record.is_final:
                return None
            record.status = "queued"
            record.progress = 0.0
            record.error = note
            return record

        return self.update(job_id, requeue)

    def mark_succeeded(
        self, job_id: str, summary: JobSummary, result_expires_at: datetime | None
    ) -> JobRecord | None:
        def succeed(record: JobRecord) -> JobRecord | None:
            if record.is_final:
                return None
            record.status = "succeeded"
            record.progress = 1.0
            record.finished_at = utc_now()
            record.summary = summary
            record.error = None
            record.result_expires_at = result_expires_at
            return record

        return self.update(job_id, succeed)

    def mark_failed(self, job_id: str, error: str) -> JobRecord | None:
        def fail(record: JobRecord) -> JobRecord | None:
            if record.is_final:
                return None
            record.status = "failed"
            record.finished_at = utc_now()
            record.error = error
            return record

        return self.update(job_id, fail)

    # --- results ------------------------------------------------------------------------
    def save_result(self, job_id: str, meta: dict[str, Any], chunks: Sequence[str]) -> datetime:
        """Store a result (replacing any earlier one of the job); returns when it expires."""
        key = keys.job_result(job_id)
        mapping: dict[FieldT, EncodableT] = {"meta": json.dumps(meta)}
        mapping.update({str(index): chunk for index, chunk in enumerate(chunks)})
        with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, self.result_ttl_seconds)
            pipe.execute()
        return utc_now() + timedelta(seconds=self.result_ttl_seconds)

    def result_meta(self, job_id: str) -> dict[str, Any] | None:
        with redis_errors():
            raw = self.redis.hget(keys.job_result(job_id), "meta")
        return None if raw is None else dict(json.loads(raw))

    def result_chunks(self, job_id: str, indexes: Sequence[int]) -> list[dict[str, Any]] | None:
        """Chunks of a result's points by index; None if the result (or a chunk) is gone."""
        if not indexes:
            return []
        with redis_errors():
            raws = self.redis.hmget(keys.job_result(job_id), [str(i) for i in indexes])
        if any(raw is None for raw in raws):
            return None
        return [dict(json.loads(raw)) for raw in raws]  # type: ignore[arg-type]
