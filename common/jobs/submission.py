"""Submitting a detection job: one way for the API's requests and for scans.

The record is stored before the message is queued, so a worker never receives a job it
cannot read; if the queue is down the record is marked failed (saying why) and the
outage propagates, for the caller to answer 503 or to let the next sweep try again.
"""

from __future__ import annotations

import contextlib

from common.errors import DependencyUnavailableError
from common.ids import new_id
from common.jobs.models import DetectionParams, JobKind, JobRecord
from common.jobs.queue import JobQueue
from common.jobs.record_store import JobStore
from common.models import utc_now


def submit_detection(
    jobs: JobStore,
    queue: JobQueue,
    *,
    kind: JobKind,
    owner_id: str,
    metric_id: str,
    params: DetectionParams,
    job_id: str | None = None,
) -> JobRecord:
    """Store the job's record and queue it; the record as submitted."""
    record = JobRecord(
        id=job_id or new_id(),
        kind=kind,
        owner_id=owner_id,
        metric_id=metric_id,
        submitted_at=utc_now(),
        params=params,
    )
    jobs.create(record)
    try:
        queue.enqueue_detection(record.id)
    except DependencyUnavailableError as exc:
        with contextlib.suppress(DependencyUnavailableError):
            jobs.mark_failed(record.id, f"the {kind} job could not be queued: {exc}")
        raise
    return record
