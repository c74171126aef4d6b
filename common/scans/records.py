"""One record per sweep in Redis, instead of a job record and a result per metric.

A sweep judges every owner's metrics at once. Its record (`redis_keys.sweep`) holds what
the sweep did overall (batches queued and done, by which worker, totals: for the logs,
Flower-less monitoring and the fleet benchmark); beside it, one small hash per owner
(`redis_keys.sweep_owner`) holds the counts of that owner's metrics only, and the owner's
sorted set (`redis_keys.owner_sweeps`) lists the sweeps that judged any of them. So
`GET /api/scans` shows each owner the sweeps that touched their metrics, with their own
counts, their own lag, and the time their last batch finished: nothing of other owners.

Each batch adds its counts with one script (`record_batch`), so batches finishing at once
on several workers never lose a count. Records expire after SCAN_RECORD_TTL_SECONDS, and an
owner's list keeps the newest SCAN_RECORDS_KEPT.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypedDict

import redis

from common import redis_keys as keys
from common.epoch import from_epoch_ms, optional_moment
from common.redis_errors import redis_errors
from common.scans.models import OwnerSweep, SweepTotals

# The counts a batch adds, per owner and overall; lag is summed (for the mean) and maxed.
COUNTS = ("metrics", "readings", "anomalies", "failures", "skipped", "lag_sum_ms", "lag_count")

# KEYS[1]: the sweep's record; then per owner: its hash, its sorted set of sweeps.
# ARGV: ttl (s), the sweep's start (ms, the score), the batch's end (ms), the sweep id,
# sweeps kept per owner, the worker's name, the phases' "name=microseconds,...", then the
# batch's COUNTS and lag max, then per owner the same and the last error ('' for none).
RECORD_BATCH = """
local ttl, started, ended = ARGV[1], ARGV[2], ARGV[3]
local sweep, kept, worker = ARGV[4], ARGV[5], ARGV[6]
local counts = {'metrics', 'readings', 'anomalies', 'failures', 'skipped',
                'lag_sum_ms', 'lag_count'}
local function add(key, at)
  for i, name in ipairs(counts) do
    redis.call('HINCRBY', key, name, ARGV[at + i - 1])
  end
  local lag = tonumber(ARGV[at + #counts])
  if lag >= 0 and lag > tonumber(redis.call('HGET', key, 'lag_max_ms') or '-1') then
    redis.call('HSET', key, 'lag_max_ms', lag)
  end
  redis.call('EXPIRE', key, ttl)
end
local width = #counts + 1
add(KEYS[1], 8)
redis.call('HINCRBY', KEYS[1], 'worker:' .. worker, 1)
for name, micros in string.gmatch(ARGV[7], '([%w_]+)=(%d+)') do
  redis.call('HINCRBY', KEYS[1], 'us:' .. name, micros)
end
local done = redis.call('HINCRBY', KEYS[1], 'batches_done', 1)
local batches = tonumber(redis.call('HGET', KEYS[1], 'batches') or '0')
if done >= batches then
  redis.call('HSET', KEYS[1], 'finished_at', ended)
end
for owner = 1, (#KEYS - 1) / 2 do
  local at = 8 + width + (owner - 1) * (width + 1)
  local key = KEYS[2 * owner]
  add(key, at)
  redis.call('HSET', key, 'finished_at', ended)
  local error = ARGV[at + width]
  if error ~= '' then
    redis.call('HSET', key, 'last_error', error)
  end
  local list = KEYS[2 * owner + 1]
  redis.call('ZADD', list, 'NX', started, sweep)
  redis.call('ZREMRANGEBYRANK', list, 0, -tonumber(kept) - 1)
  redis.call('EXPIRE', list, ttl)
end
-- 1 for the batch that finished the sweep (once: a batch run again counts past it)
if done == batches then
  return 1
end
return 0
"""


@dataclass
class Tally:
    """What a batch did for one owner, or overall."""

    metrics: int = 0  # metrics judged (some readings judged)
    readings: int = 0  # readings judged
    anomalies: int = 0  # anomalies stored
    failures: int = 0  # metrics whose judging failed
    skipped: int = 0  # metrics too short to judge, counted the first time a sweep says so
    lag_sum_ms: int = 0
    lag_count: int = 0
    lag_max_ms: int = -1
    last_error: str = ""

    def add_lag(self, lag_ms: int) -> None:
        self.lag_sum_ms += lag_ms
        self.lag_count += 1
        self.lag_max_ms = max(self.lag_max_ms, lag_ms)

    def values(self) -> list[int]:
        return [getattr(self, name) for name in COUNTS] + [self.lag_max_ms]


# Where a batch's time goes, each phase's total kept in the sweep's record.
# The graph's reads and writes by statement: the batch's new readings (SCAN_READ_NEW), its
# lessons and maintenance windows, the histories of rebuilds; anomalies and incidents, the
# scan marks (SAVE_SCAN_MARKS).
PHASES = (
    "read_new",
    "read_lessons",
    "read_history",
    "detect",
    "state_codec",
    "redis",
    "write_anomalies",
    "write_marks",
)


@dataclass
class BatchTally:
    """What a batch did, per owner of its metrics and overall, and where its time went."""

    owners: dict[str, Tally] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    @contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.phase_seconds[phase] += time.perf_counter() - began

    def of(self, owner_id: str) -> Tally:
        return self.owners.setdefault(owner_id, Tally())

    def total(self) -> Tally:
        total = Tally()
        for tally in self.owners.values():
            for name in COUNTS:
                setattr(total, name, getattr(total, name) + getattr(tally, name))
            total.lag_max_ms = max(total.lag_max_ms, tally.lag_max_ms)
        return total


def _fields(raw: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _int(fields: Mapping[str, str], name: str) -> int:
    return int(fields.get(name) or 0)


class Counts(TypedDict):
    """A batch's COUNTS added up, as a sweep's record and an owner's both answer them."""

    metrics_judged: int
    readings_judged: int
    anomalies: int
    failures: int
    skipped: int
    lag_seconds_mean: float | None  # None when no metric was judged up to its newest reading
    lag_seconds_max: float | None


def _counts(fields: Mapping[str, str]) -> Counts:
    lagged = _int(fields, "lag_count")
    return Counts(
        metrics_judged=_int(fields, "metrics"),
        readings_judged=_int(fields, "readings"),
        anomalies=_int(fields, "anomalies"),
        failures=_int(fields, "failures"),
        skipped=_int(fields, "skipped"),
        lag_seconds_mean=_int(fields, "lag_sum_ms") / lagged / 1000 if lagged else None,
        lag_seconds_max=_int(fields, "lag_max_ms") / 1000 if lagged else None,
    )


class SweepRecords:
    """Sweep records over one Redis client; outages come out as DependencyUnavailableError."""

    def __init__(self, client: redis.Redis, ttl_seconds: int, kept_per_owner: int):
        self.redis = client
        self.ttl_seconds = ttl_seconds
        self.kept_per_owner = kept_per_owner
        self._record_batch = client.register_script(RECORD_BATCH)

    def start(
        self,
        sweep_id: str,
        started_ms: int,
        batches: int,
        queued: int,
        pending: int,
        rebuilds_waiting: Mapping[str, int] | None = None,
    ) -> None:
        """The sweep's record, before its batches are queued; `rebuilds_waiting`: per owner,
        the metrics whose state rebuild the sweep left for a later one (each such owner
        gets the sweep in their list, with no batch of theirs, if none is queued)."""
        waiting = rebuilds_waiting or {}
        fields: dict[str, int] = {
            "started_at": started_ms,
            "batches": batches,
            "batches_done": 0,
            "queued": queued,
            "pending": pending,
            "rebuilds_waiting": sum(waiting.values()),
        }
        key = keys.sweep(sweep_id)
        with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
            if batches == 0:
                pipe.hset(key, "finished_at", started_ms)
            pipe.expire(key, self.ttl_seconds)
            for owner_id, count in sorted(waiting.items()):
                owned, listed = keys.sweep_owner(sweep_id, owner_id), keys.owner_sweeps(owner_id)
                pipe.hset(owned, "rebuilds_waiting", count)
                pipe.expire(owned, self.ttl_seconds)
                pipe.zadd(listed, {sweep_id: started_ms}, nx=True)
                pipe.zremrangebyrank(listed, 0, -self.kept_per_owner - 1)
                pipe.expire(listed, self.ttl_seconds)
            pipe.execute()

    def record_batch(
        self, sweep_id: str, started_ms: int, ended_ms: int, worker: str, tally: BatchTally
    ) -> bool:
        """Add a finished batch's counts (overall and per owner); True if it was the
        sweep's last batch."""
        record_keys = [keys.sweep(sweep_id)]
        args: list[str | int] = [
            self.ttl_seconds,
            started_ms,
            ended_ms,
            sweep_id,
            self.kept_per_owner,
            worker,
            ",".join(f"{name}={round(s * 1e6)}" for name, s in tally.phase_seconds.items()),
            *tally.total().values(),
        ]
        for owner_id, owned in sorted(tally.owners.items()):
            record_keys += [keys.sweep_owner(sweep_id, owner_id), keys.owner_sweeps(owner_id)]
            args += [*owned.values(), owned.last_error[:500]]
        with redis_errors():
            return bool(self._record_batch(keys=record_keys, args=args))

    def totals(self, sweep_id: str) -> SweepTotals | None:
        """The sweep over all owners (for logs and benchmarks; no API shows it)."""
        with redis_errors():
            raw = self.redis.hgetall(keys.sweep(sweep_id))
        if not raw:
            return None
        fields = _fields(raw)
        return SweepTotals(
            id=sweep_id,
            started_at=from_epoch_ms(_int(fields, "started_at")),
            finished_at=optional_moment(
                int(fields["finished_at"]) if "finished_at" in fields else None
            ),
            batches=_int(fields, "batches"),
            batches_done=_int(fields, "batches_done"),
            metrics_queued=_int(fields, "queued"),
            metrics_pending=_int(fields, "pending"),
            rebuilds_waiting=_int(fields, "rebuilds_waiting"),
            **_counts(fields),
            batches_by_worker={
                name.removeprefix("worker:"): int(value)
                for name, value in fields.items()
                if name.startswith("worker:")
            },
            phase_seconds={
                name.removeprefix("us:"): int(value) / 1e6
                for name, value in fields.items()
                if name.startswith("us:")
            },
        )

    def list_owned(
        self, owner_id: str, limit: int = 50, offset: int = 0
    ) -> tuple[list[OwnerSweep], int | None]:
        """The sweeps that judged the owner's metrics, newest first, with the owner's counts
        only; and the offset of the next page (None: no more)."""
        with redis_errors():
            listed = self.redis.zrevrange(keys.owner_sweeps(owner_id), offset, offset + limit)
            ids = [_text(sweep_id) for sweep_id in listed if isinstance(sweep_id, bytes | str)]
        more = len(ids) > limit
        ids = ids[:limit]
        with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            for sweep_id in ids:
                pipe.hgetall(keys.sweep_owner(sweep_id, owner_id))
                pipe.hmget(keys.sweep(sweep_id), ["started_at", "finished_at"])
            answers = pipe.execute()
        sweeps = []
        for index, sweep_id in enumerate(ids):
            owned, (started, finished) = answers[2 * index], answers[2 * index + 1]
            if not owned or started is None:
                continue  # expired meanwhile
            fields = _fields(owned)
            started_ms = int(started)
            # None: no batch held the owner's metrics (their rebuilds all wait).
            last_batch_ms = int(fields["finished_at"]) if "finished_at" in fields else None
            sweeps.append(
                OwnerSweep(
                    id=sweep_id,
                    started_at=from_epoch_ms(started_ms),
                    finished=finished is not None,
                    last_batch_at=optional_moment(last_batch_ms),
                    duration_seconds=None
                    if last_batch_ms is None
                    else (last_batch_ms - started_ms) / 1000,
                    **_counts(fields),
                    rebuilds_waiting=_int(fields, "rebuilds_waiting"),
                    last_error=fields.get("last_error") or None,
                )
            )
        return sweeps, (offset + limit if more else None)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
