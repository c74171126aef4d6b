"""GET /api/jobs pages: following next_offset lists every job once, filtered or not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from common import redis_keys as keys
from common.ids import new_id
from common.jobs.models import DetectionParams, JobKind, JobRecord
from common.jobs.record_store import JobStore


def make_jobs(jobs: JobStore, owner_id: str, kinds: str) -> list[JobRecord]:
    """One job record per letter of `kinds` (d: detect, s: scan), oldest first."""
    start = datetime.now(UTC) - timedelta(hours=1)
    made = []
    for index, letter in enumerate(kinds):
        kind: JobKind = "scan" if letter == "s" else "detect"
        record = JobRecord(
            id=new_id(),
            kind=kind,
            owner_id=owner_id,
            metric_id="m",
            submitted_at=start + timedelta(seconds=index),
            params=DetectionParams(),
        )
        made.append(jobs.create(record))
    return made


def all_pages(http: httpx.Client, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    offset: int | None = 0
    while offset is not None and len(pages) < 50:
        answer = http.get("/api/jobs", params={**params, "offset": offset})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        pages.append([job["id"] for job in body["jobs"]])
        offset = body["next_offset"]
    return pages


def test_paging_a_kind_lists_each_job_once(client: httpx.Client, jobs: JobStore) -> None:
    made = make_jobs(jobs, client.user.id, "ddssdsdddsssdds")  # type: ignore[attr-defined]
    scans = [record.id for record in reversed(made) if record.kind == "scan"]
    pages = all_pages(client, kind="scan", limit=2)
    listed = [job_id for page in pages for job_id in page]
    assert listed == scans
    assert all(len(page) == 2 for page in pages[:-1]) and pages[-1]


def test_paging_skips_expired_records_without_repeating(
    client: httpx.Client, jobs: JobStore
) -> None:
    made = make_jobs(jobs, client.user.id, "d" * 9)  # type: ignore[attr-defined]
    for expired in (made[8], made[7], made[4]):
        jobs.redis.delete(keys.job(expired.id))
    kept = [record.id for record in reversed(made) if record not in (made[8], made[7], made[4])]
    pages = all_pages(client, limit=3)
    assert [job_id for page in pages for job_id in page] == kept
    assert [len(page) for page in pages] == [3, 3]
