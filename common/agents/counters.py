"""Counters become per-second rates: each sample's increase over the previous sample of its
series, divided by the seconds between them. A decrease is a reset (the process
restarted): the rate counts from zero, as Prometheus' rate() does. A series' first sample
only becomes the base of the next rate.

The previous sample is remembered across requests in Redis, per owner and series:
every web process (uvicorn workers, replicas) sees the same last sample, it survives a
restart of the web, and it costs one round trip per request, not a graph write per series.
Keys expire after AGENT_COUNTER_TTL_SECONDS without samples (then the next sample is a
fresh base). The new last sample is saved only after the readings are stored, and only if
it is newer than the saved one: a request that failed leaves the base as it was, so its
retry computes the same rates (stored once, by their ids); samples at or before the last
one (a retry of stored samples, out-of-order) are skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from common import redis_keys
from common.agents.series import MappedSeries
from common.redis_errors import redis_errors

# KEYS: the series' keys; ARGV: the TTL, then "ms value" for each key. Saves a sample only
# over an older one, so concurrent or out-of-order requests never move a base backwards.
_SAVE_NEWER = """
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local sample = ARGV[i + 1]
  local new_ms = tonumber(string.match(sample, '^(%-?%d+)'))
  local saved = redis.call('GET', key)
  if (not saved) or tonumber(string.match(saved, '^(%-?%d+)')) < new_ms then
    redis.call('SET', key, sample, 'EX', ttl)
  else
    redis.call('EXPIRE', key, ttl)
  end
end
return 0
"""
_CHUNK = 1000  # keys per script call: bounded time holding Redis


@dataclass(frozen=True)
class LastSample:
    timestamp_ms: int
    value: float

    def encode(self) -> str:
        return f"{self.timestamp_ms} {self.value!r}"

    @classmethod
    def decode(cls, raw: bytes | str) -> LastSample:
        text = raw.decode() if isinstance(raw, bytes) else raw
        ms, value = text.split(" ", 1)
        return cls(int(ms), float(value))


def _digest(series: MappedSeries) -> str:
    return hashlib.blake2b(
        f"{series.service}\x00{series.metric}".encode(), digest_size=16
    ).hexdigest()


class CounterBases:
    """Each owner's counters' last samples, in Redis."""

    def __init__(self, client: redis.Redis, ttl_seconds: int):
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._save = client.register_script(_SAVE_NEWER)

    def keys(self, owner_id: str, series: Sequence[MappedSeries]) -> list[str]:
        return [redis_keys.counter_last_sample(owner_id, _digest(s)) for s in series]

    def load(self, keys: Sequence[str]) -> list[LastSample | None]:
        if not keys:
            return []
        with redis_errors():
            raw = self.client.mget(keys)
        return [None if r is None else LastSample.decode(r) for r in raw]

    def save(self, samples: dict[str, LastSample]) -> None:
        items = list(samples.items())
        with redis_errors():
            for start in range(0, len(items), _CHUNK):
                chunk = items[start : start + _CHUNK]
                self._save(
                    keys=[key for key, _ in chunk],
                    args=[self.ttl_seconds, *(sample.encode() for _, sample in chunk)],
                )


def to_rates(series: MappedSeries, base: LastSample | None) -> tuple[LastSample | None, int]:
    """Turn a counter series' samples into rates in place; returns its new last sample and
    how many samples gave no rate (the first base, samples not after the last one)."""
    order = sorted(range(len(series.values)), key=series.timestamps_ms.__getitem__)
    timestamps: list[int] = []
    rates: list[float] = []
    skipped = 0
    last = base
    for index in order:
        ms, value = series.timestamps_ms[index], series.values[index]
        if last is None:
            last = LastSample(ms, value)
            skipped += 1
            continue
        if ms <= last.timestamp_ms:
            skipped += 1
            continue
        increase = value - last.value
        if increase < 0:  # a reset: the counter restarted from zero
            increase = value
        timestamps.append(ms)
        rates.append(increase * 1000.0 / (ms - last.timestamp_ms))
        last = LastSample(ms, value)
    series.timestamps_ms, series.values = timestamps, rates
    return last, skipped


class MetricTypes:
    """Metric types stated by remote_write metadata, per owner (metadata arrives in requests
    of its own, so it is remembered for the samples that come later)."""

    def __init__(self, client: redis.Redis, ttl_seconds: int):
        self.client = client
        self.ttl_seconds = ttl_seconds

    def remember(self, owner_id: str, types: dict[str, str]) -> None:
        if not types:
            return
        key = redis_keys.owner_metric_types(owner_id)
        mapping: dict[str | bytes, str | bytes] = dict(types.items())
        with redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
            pipe.expire(key, self.ttl_seconds)
            pipe.execute()

    def lookup(self, owner_id: str, names: Sequence[str]) -> dict[str, str]:
        if not names:
            return {}
        with redis_errors():
            raw = self.client.hmget(redis_keys.owner_metric_types(owner_id), list(names))
        return {
            name: t.decode() if isinstance(t, bytes) else str(t)
            for name, t in zip(names, raw, strict=True)
            if t is not None
        }
