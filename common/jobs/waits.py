"""Waiting for a job to finish without holding a thread: what the web's `?wait=` uses.

A wait is a coroutine on the event loop, parked on a Redis pub/sub message, so waiting
clients cost a socket each and no thread: the threadpool stays free for every other
route. Each wait holds one Redis connection, so a web process keeps at most
`max_waiting` waits at once; beyond that a wait returns the job as it is, at once (the
client gets 202 and polls, as it would without `?wait=`).
"""

from __future__ import annotations

import time

import redis.asyncio

from common import redis_keys as keys
from common.jobs.models import JobRecord
from common.jobs.record_store import record_from_stored
from common.redis_errors import redis_errors


class JobWaiter:
    def __init__(self, client: redis.asyncio.Redis, max_waiting: int):
        self.redis = client
        self.max_waiting = max_waiting
        self.waiting = 0  # only touched on the event loop's thread: no lock needed

    async def get(self, job_id: str) -> JobRecord | None:
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(keys.job(job_id))
                pipe.exists(keys.job_result(job_id))
                raw, result_kept = await pipe.execute()
        return None if raw is None else record_from_stored(raw, bool(result_kept))

    async def wait_finished(self, job_id: str, timeout: float) -> JobRecord | None:
        """The record once it is final, or as it is when `timeout` seconds have passed (or
        at once, if `max_waiting` waits are already in progress)."""
        if self.waiting >= self.max_waiting:
            return await self.get(job_id)
        self.waiting += 1
        try:
            return await self._wait(job_id, timeout)
        finally:
            self.waiting -= 1

    async def _wait(self, job_id: str, timeout: float) -> JobRecord | None:
        deadline = time.monotonic() + timeout
        with redis_errors():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                # Subscribed before the first read: a finish in between is not missed.
                await pubsub.subscribe(keys.job_finished_channel(job_id))
                while True:
                    record = await self.get(job_id)
                    remaining = deadline - time.monotonic()
                    if record is None or record.is_final or remaining <= 0:
                        return record
                    # Re-read at least every second, in case a notice was lost.
                    await pubsub.get_message(timeout=min(remaining, 1.0))
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
