"""Job records in Redis, and the state machine they go through (queued, running, final).

A record is one JSON document under its own key, kept for JOB_RECORD_TTL_SECONDS, longer
than its result (common.jobs.result_store), so the record can say that the result expired.
Each owner has a sorted set of job ids by submission time, for listing recent jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import redis

from common import redis_keys as keys
from common.epoch import now_ms, to_epoch_ms, utc_now
from common.errors import DependencyUnavailableError, NotFoundError
from common.ids import is_new_id
from common.jobs.models import JobKind, JobRecord, JobSummary
from common.redis_errors import REDIS, redis_errors
from common.settings import Settings

# Optimistic updates of one record retried at most this often when another writer races.
MAX_UPDATE_ATTEMPTS = 50


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


class JobStore:
    """Job records over one Redis client. Every Redis error that means "unreachable"
    comes out as DependencyUnavailableError("redis", ...)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        record_ttl_seconds: int,
        list_max: int = 1000,
    ):
        self.redis = client
        self.record_ttl_seconds = record_ttl_seconds
        self.list_max = list_max

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> JobStore:
        return cls(
            client,
            record_ttl_seconds=settings.job_record_ttl_seconds,
            list_max=settings.job_list_max,
        )

    def create(self, record: JobRecord) -> JobRecord:
        score = to_epoch_ms(record.submitted_at)
        oldest_kept = now_ms() - self.record_ttl_seconds * 1000
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
        """The job's record; None if there is none, or `job_id` is not a job id's shape."""
        if not is_new_id(job_id):
            return None
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
        """Start a run; final jobs stay final.

        A run that ends leaves the record final, or queued for a retry (mark_queued); one
        found still running when the next run starts died with its worker: counted in
        `worker_deaths`, apart from the retries of an outage.
        """

        def start(record: JobRecord) -> JobRecord | None:
            if record.is_final:
                return None
            if record.status == "running":
                record.worker_deaths += 1
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
