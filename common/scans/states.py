"""What scans keep in Redis per metric, and how sweeps share metrics without judging one twice.

Per metric (`redis_keys.scan_state`): a hash of the detector state's bytes (`state`), the
`version` every save raises, the settings the state was built with (`settings`) and the
metric's cadence (`cadence`, ms between readings: how a sweep estimates its new readings).
Beside it a lease (`redis_keys.scan_lease`): the id of the sweep whose batch holds the
metric, set with NX by the sweep that queues it and deleted by the batch's save.

How concurrent sweeps never judge a reading twice nor lose an update:
- A sweep queues a metric only if it takes its lease (`claim`, SET NX in one script): two
  sweeps (two beats, or a sweep while the last one's batches still run) never both hold
  one, and a metric never has more than one batch waiting (the backlog is bounded).
- A batch judges only the metrics whose lease its sweep holds (`load`), and `save` is a
  compare-and-set in one script: it writes a metric's state only if the lease is still
  its sweep's and the version is the one it loaded, and releases the lease. A batch that
  outlived its lease (LEASE_SECONDS, far beyond a task's time limit) saves nothing; the
  metric's next batch judges from the state it finds.
A retried or redelivered batch carries the same sweep id, so it holds the same leases and
redoes the same work (anomalies and marks are written idempotently).

All of a batch's metrics are claimed, loaded and saved in one Redis round trip each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from common import redis_keys as keys
from common.redis_errors import redis_errors

# Longest a metric stays leased to one sweep: a queued batch not run within it (its message
# lost) gives the metric back to the next sweep. Above the broker's visibility timeout
# (1 h by default), after which Redis would hand an unacknowledged batch out again anyway.
LEASE_SECONDS = 2 * 3600
# A metric's state outlives this many scan windows without a sweep (then it is rebuilt).
STATE_WINDOWS_KEPT = 2

# KEYS: n leases, then the n state hashes. ARGV: the sweep id, the lease's ms.
# Per metric: "-" if another sweep holds it; else "cadence|settings|has-state".
# The sweep that holds a lease already takes it again (a retried sweep).
CLAIM = """
local n = #KEYS / 2
local out = {}
for i = 1, n do
  local holder = redis.call('GET', KEYS[i])
  if holder == ARGV[1] or redis.call('SET', KEYS[i], ARGV[1], 'NX', 'PX', ARGV[2]) then
    local found = redis.call('HMGET', KEYS[n + i], 'cadence', 'settings')
    local stored = redis.call('HEXISTS', KEYS[n + i], 'state')
    out[i] = (found[1] or '') .. '|' .. (found[2] or '') .. '|' .. stored
  else
    out[i] = '-'
  end
end
return out
"""

# KEYS: per metric its state hash, its lease. ARGV: the sweep id, the state's TTL (s), then
# per metric: the version loaded, "save" or "release", state bytes (empty: the method keeps
# none), settings, cadence.
# Per metric: 1 saved (or released), 0 not this sweep's any more (nothing written).
SAVE = """
local sweep, ttl = ARGV[1], ARGV[2]
local out = {}
for i = 1, #KEYS / 2 do
  local state_key, lease_key = KEYS[2 * i - 1], KEYS[2 * i]
  local at = 2 + (i - 1) * 5
  if redis.call('GET', lease_key) ~= sweep then
    out[i] = 0
  else
    out[i] = 1
    if ARGV[at + 2] == 'save' then
      local version = redis.call('HGET', state_key, 'version') or '0'
      if version == ARGV[at + 1] then
        redis.call('HSET', state_key, 'version', tonumber(version) + 1,
                   'settings', ARGV[at + 4], 'cadence', ARGV[at + 5])
        if ARGV[at + 3] == '' then
          redis.call('HDEL', state_key, 'state')
        else
          redis.call('HSET', state_key, 'state', ARGV[at + 3])
        end
        redis.call('EXPIRE', state_key, ttl)
      else
        out[i] = 0
      end
    end
    redis.call('DEL', lease_key)
  end
end
return out
"""

# KEYS: leases. ARGV: the sweep id. Deletes the leases the sweep still holds.
RELEASE = """
local released = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    released = released + 1
  end
end
return released
"""


# SET KEYS[1] to ARGV[1] if it is unset or holds a smaller number.
SET_IF_GREATER = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Claimed:
    """A metric a sweep now holds, with what it knows of its state."""

    cadence_ms: int | None
    settings_key: str | None  # the settings its state was built with
    has_state: bool


@dataclass(frozen=True)
class LoadedState:
    """A metric's scan state as a batch found it."""

    leased: bool  # the batch's sweep holds the metric: it may judge and save it
    state: bytes | None
    version: int
    cadence_ms: int | None


@dataclass(frozen=True)
class StateSave:
    """What a batch writes back for a metric, releasing its lease: with `judged`, the new
    state (empty for methods without one), settings and cadence; else nothing more."""

    metric_id: str
    version: int  # the version loaded: the save is refused if it changed
    judged: bool = False
    state: bytes = b""
    settings_key: str = ""
    cadence_ms: int | None = None


def _text(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


class ScanStates:
    """Per-metric scan states, leases, the metrics left behind and the sweep cursor, over
    one Redis client; outages come out as DependencyUnavailableError."""

    def __init__(self, client: redis.Redis, state_ttl_seconds: int):
        self.redis = client
        self.state_ttl_seconds = state_ttl_seconds
        self._claim = client.register_script(CLAIM)
        self._save = client.register_script(SAVE)
        self._release = client.register_script(RELEASE)

    def claim(self, metric_ids: Sequence[str], sweep_id: str) -> dict[str, Claimed]:
        """Lease the metrics to `sweep_id`; those another sweep holds are left out."""
        if not metric_ids:
            return {}
        lease_keys = [keys.scan_lease(m) for m in metric_ids]
        state_keys = [keys.scan_state(m) for m in metric_ids]
        with redis_errors():
            answers = self._claim(
                keys=lease_keys + state_keys, args=[sweep_id, LEASE_SECONDS * 1000]
            )
        claimed = {}
        for metric_id, raw in zip(metric_ids, answers, strict=True):
            answer = _text(raw) or "-"
            if answer == "-":
                continue
            cadence, settings_key, stored = answer.split("|")
            claimed[metric_id] = Claimed(
                cadence_ms=int(cadence) if cadence else None,
                settings_key=settings_key or None,
                has_state=stored == "1",
            )
        return claimed

    def held(self, metric_ids: Sequence[str]) -> set[str]:
        """The metrics a sweep's batch holds now (leased, whatever the sweep): a batch
        judging them may have read the maintenance windows before a change and not saved
        its marks yet (common.maintenance.reach)."""
        if not metric_ids:
            return set()
        with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            for metric_id in metric_ids:
                pipe.exists(keys.scan_lease(metric_id))
            answers = pipe.execute()
        return {metric_id for metric_id, held in zip(metric_ids, answers, strict=True) if held}

    def load(self, metric_ids: Sequence[str], sweep_id: str) -> dict[str, LoadedState]:
        """Each metric's state, and whether `sweep_id` holds its lease."""
        with redis_errors(), self.redis.pipeline(transaction=False) as pipe:
            for metric_id in metric_ids:
                pipe.get(keys.scan_lease(metric_id))
                pipe.hmget(keys.scan_state(metric_id), ["state", "version", "cadence"])
            answers = pipe.execute()
        loaded = {}
        for index, metric_id in enumerate(metric_ids):
            holder, (state, version, cadence) = answers[2 * index], answers[2 * index + 1]
            loaded[metric_id] = LoadedState(
                leased=_text(holder) == sweep_id,
                state=state,
                version=int(version or 0),
                cadence_ms=int(cadence) if cadence else None,
            )
        return loaded

    def save(self, sweep_id: str, saves: Sequence[StateSave]) -> set[str]:
        """Write the states (compare-and-set on lease and version) and release the leases;
        the metric ids whose save was refused."""
        if not saves:
            return set()
        state_keys: list[str] = []
        args: list[str | bytes | int] = [sweep_id, self.state_ttl_seconds]
        for save in saves:
            state_keys += [keys.scan_state(save.metric_id), keys.scan_lease(save.metric_id)]
            args += [
                str(save.version),
                "save" if save.judged else "release",
                save.state,
                save.settings_key,
                "" if save.cadence_ms is None else str(save.cadence_ms),
            ]
        with redis_errors():
            answers = self._save(keys=state_keys, args=args)
        return {save.metric_id for save, ok in zip(saves, answers, strict=True) if not int(ok)}

    def release(self, metric_ids: Iterable[str], sweep_id: str) -> int:
        """Give up the leases `sweep_id` still holds (its batch could not run or be queued)."""
        lease_keys = [keys.scan_lease(m) for m in metric_ids]
        if not lease_keys:
            return 0
        with redis_errors():
            return int(self._release(keys=lease_keys, args=[sweep_id]))

    def behind(self) -> list[str]:
        """Metrics a sweep must look at again, whether or not readings were appended."""
        with redis_errors():
            members = self.redis.smembers(keys.scan_behind())
        return sorted(_text(m) or "" for m in members)

    def mark_behind(self, metric_ids: Iterable[str]) -> None:
        ids = list(metric_ids)
        if ids:
            with redis_errors():
                self.redis.sadd(keys.scan_behind(), *ids)

    def forget_behind(self, metric_ids: Iterable[str]) -> None:
        ids = list(metric_ids)
        if ids:
            with redis_errors():
                self.redis.srem(keys.scan_behind(), *ids)

    def cursor(self) -> int | None:
        """When the last sweep started (server time); None before the first."""
        with redis_errors():
            raw = self.redis.get(keys.scan_cursor())
        return None if raw is None else int(raw)

    def advance_cursor(self, started_ms: int) -> None:
        """Move the cursor to `started_ms`, never back (an older sweep finishing late)."""
        with redis_errors():
            self.redis.eval(SET_IF_GREATER, 1, keys.scan_cursor(), started_ms)
