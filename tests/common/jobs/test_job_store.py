"""JobStore and ResultStore against the real (embedded) Redis: records, listing,
transitions, results."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import redis.asyncio

from common import redis_keys as keys
from common.embedded import EmbeddedServer
from common.errors import DependencyUnavailableError, NotFoundError
from common.ids import new_id
from common.jobs.models import DetectionParams, JobRecord, JobSummary
from common.jobs.record_store import JobStore
from common.jobs.result_store import ResultStore
from common.jobs.results import ResultMeta
from common.jobs.waits import JobWaiter


@pytest.fixture
def jobs(embedded_server: EmbeddedServer) -> Iterator[JobStore]:
    """Not the shared fixture: short lists (list_max=5), so that trimming shows."""
    client = redis.Redis.from_url(embedded_server.redis_url)
    yield JobStore(client, record_ttl_seconds=3600, list_max=5)
    client.close()


def new_record(owner_id: str, kind: str = "detect", **fields: object) -> JobRecord:
    return JobRecord(
        id=new_id(),
        kind=kind,  # type: ignore[arg-type]
        owner_id=owner_id,
        metric_id="m1",
        submitted_at=fields.pop("submitted_at", datetime.now(UTC)),  # type: ignore[arg-type]
        params=DetectionParams(method="stl", period=24),
        **fields,  # type: ignore[arg-type]
    )


def summary() -> JobSummary:
    return JobSummary(
        method="rolling",
        method_params={"window": 30},
        points=10,
        flagged=1,
        events=1,
        anomalies_stored=1,
        window_start=None,
        window_end=None,
        latest=None,
    )


def test_create_and_get_job(jobs: JobStore) -> None:
    record = jobs.create(new_record(new_id()))
    stored = jobs.get(record.id)
    assert stored == record
    assert jobs.redis.ttl(keys.job(record.id)) > 3500


def test_get_owned_job_of_another_user_is_not_found(jobs: JobStore) -> None:
    record = jobs.create(new_record(new_id()))
    assert jobs.get_owned(record.owner_id, record.id).id == record.id
    with pytest.raises(NotFoundError):
        jobs.get_owned(new_id(), record.id)
    with pytest.raises(NotFoundError):
        jobs.get_owned(record.owner_id, new_id())


def test_list_owned_newest_first_bounded_and_filtered(jobs: JobStore) -> None:
    owner = new_id()
    start = datetime.now(UTC)
    made = [
        jobs.create(
            new_record(
                owner, "scan" if i % 2 else "detect", submitted_at=start + timedelta(seconds=i)
            )
        )
        for i in range(7)
    ]
    listed = jobs.list_owned(owner, limit=10)
    # list_max=5: the two oldest are no longer listed.
    assert [r.id for r in listed.records] == [r.id for r in reversed(made[2:])]
    assert listed.next_offset is None
    page = jobs.list_owned(owner, limit=2, offset=1)
    assert [r.id for r in page.records] == [made[5].id, made[4].id]
    assert page.next_offset == 3
    assert all(r.kind == "scan" for r in jobs.list_owned(owner, kind="scan").records)
    jobs.redis.delete(keys.job(made[6].id))  # an expired record is skipped
    assert jobs.list_owned(owner, limit=1).records[0].id == made[5].id


def test_transitions_keep_final_states_final(jobs: JobStore) -> None:
    record = jobs.create(new_record(new_id()))
    running = jobs.mark_running(record.id, "host:1")
    assert running is not None and running.status == "running" and running.attempts == 1
    assert jobs.set_progress(record.id, 0.5).progress == 0.5  # type: ignore[union-attr]
    assert jobs.set_progress(record.id, 0.2).progress == 0.5  # type: ignore[union-attr]
    done = jobs.mark_succeeded(record.id, summary(), datetime.now(UTC))
    assert done is not None and done.status == "succeeded" and done.progress == 1.0
    assert done.finished_at is not None
    assert jobs.mark_failed(record.id, "late").status == "succeeded"  # type: ignore[union-attr]
    assert jobs.mark_running(record.id, "host:2").attempts == 1  # type: ignore[union-attr]
    assert jobs.update(new_id(), lambda r: r) is None


def test_only_runs_that_never_ended_count_as_worker_deaths(jobs: JobStore) -> None:
    record = jobs.create(new_record(new_id()))
    jobs.mark_running(record.id, "host:1")
    # An outage: the run ends by queueing a retry. Not a death.
    jobs.mark_queued(record.id, "retrying in 1 s: the graph store is unavailable")
    again = jobs.mark_running(record.id, "host:1")
    assert again is not None and again.attempts == 2 and again.worker_deaths == 0
    # The worker dies: the next run finds the record still running.
    third = jobs.mark_running(record.id, "host:2")
    assert third is not None and third.attempts == 3 and third.worker_deaths == 1


def test_concurrent_updates_are_not_lost(jobs: JobStore) -> None:
    record = jobs.create(new_record(new_id()))

    def bump() -> None:
        for _ in range(20):
            jobs.update(record.id, lambda r: r.model_copy(update={"attempts": r.attempts + 1}))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert jobs.get(record.id).attempts == 80  # type: ignore[union-attr]


def test_result_expiry_is_reported_on_the_record(jobs: JobStore) -> None:
    results = ResultStore(jobs.redis, ttl_seconds=600)
    record = jobs.create(new_record(new_id()))
    jobs.mark_running(record.id, "host:1")
    meta = ResultMeta(
        job_id=record.id,
        metric_id="m1",
        method="rolling",
        method_params={"window": 2},
        total=3,
        flagged=0,
        chunk_points=2,
        events=[],
    )
    column = {"timestamp_ms": [1, 2], "value": [1.0, None], "is_anomaly": [False, False]}
    last = {"timestamp_ms": [3], "value": [3.0], "is_anomaly": [True]}
    expires_at = results.save(meta, [json.dumps(column), json.dumps(last)])
    jobs.mark_succeeded(record.id, summary(), expires_at)
    assert results.meta(record.id) == meta
    assert results.chunks(record.id, [1]) == [last]
    points = results.points(meta, offset=1, limit=5)  # across both chunks, up to the end
    assert points is not None and points.timestamp_ms == [2, 3] and points.value == [None, 3.0]
    assert points.expected == [None, None]  # a column the chunks lack reads as nulls
    assert jobs.get(record.id).result_expired is False  # type: ignore[union-attr]
    assert 590 < jobs.redis.ttl(keys.job_result(record.id)) <= 600
    jobs.redis.delete(keys.job_result(record.id))
    expired = jobs.get(record.id)
    assert expired is not None and expired.result_expired and expired.summary is not None
    assert results.meta(record.id) is None and results.chunks(record.id, [0]) is None
    assert results.points(meta) is None


def wait_finished(redis_url: str, job_id: str, timeout: float, max_waiting: int = 10) -> Any:
    async def wait() -> JobRecord | None:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            return await JobWaiter(client, max_waiting).wait_finished(job_id, timeout)
        finally:
            await client.aclose()

    return asyncio.run(wait())


def test_wait_finished_returns_when_the_job_finishes(
    jobs: JobStore, embedded_server: EmbeddedServer
) -> None:
    record = jobs.create(new_record(new_id()))
    jobs.mark_running(record.id, "host:1")
    timer = threading.Timer(0.3, lambda: jobs.mark_failed(record.id, "boom"))
    timer.start()
    began = time.monotonic()
    finished = wait_finished(embedded_server.redis_url, record.id, timeout=10)
    assert finished is not None and finished.status == "failed" and finished.error == "boom"
    assert time.monotonic() - began < 2


def test_wait_finished_gives_up_after_the_timeout(
    jobs: JobStore, embedded_server: EmbeddedServer
) -> None:
    record = jobs.create(new_record(new_id()))
    began = time.monotonic()
    still = wait_finished(embedded_server.redis_url, record.id, timeout=0.3)
    assert still is not None and still.status == "queued"
    assert 0.25 < time.monotonic() - began < 2


def test_wait_finished_beyond_max_waiting_answers_at_once(
    jobs: JobStore, embedded_server: EmbeddedServer
) -> None:
    record = jobs.create(new_record(new_id()))
    began = time.monotonic()
    still = wait_finished(embedded_server.redis_url, record.id, timeout=5, max_waiting=0)
    assert still is not None and still.status == "queued"
    assert time.monotonic() - began < 1


def test_update_gives_up_when_the_record_keeps_changing(
    jobs: JobStore, embedded_server: EmbeddedServer
) -> None:
    record = jobs.create(new_record(new_id()))
    other_writer = redis.Redis.from_url(embedded_server.redis_url)
    attempts: list[int] = []
    outcome: list[BaseException | JobRecord | None] = []

    def rewritten_meanwhile(current: JobRecord) -> JobRecord:
        attempts.append(1)
        other_writer.set(keys.job(record.id), current.model_dump_json(), keepttl=True)
        current.progress = 0.5
        return current

    def update() -> None:
        try:
            outcome.append(jobs.update(record.id, rewritten_meanwhile))
        except BaseException as exc:
            outcome.append(exc)

    updater = threading.Thread(target=update, daemon=True)
    updater.start()
    updater.join(20)
    other_writer.close()
    assert not updater.is_alive(), f"still retrying after {len(attempts)} attempts"
    assert isinstance(outcome[0], DependencyUnavailableError)
    assert "changed 50 times" in outcome[0].detail
    assert len(attempts) == 50


def test_redis_down_is_a_dependency_error() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.5)
    jobs = JobStore(client, record_ttl_seconds=60)
    with pytest.raises(DependencyUnavailableError) as caught:
        jobs.get(new_id())
    assert caught.value.dependency == "redis"
    with pytest.raises(DependencyUnavailableError):
        jobs.create(new_record("o"))
