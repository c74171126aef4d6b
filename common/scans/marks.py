"""What scans remember in Redis: where the last sweep started, how far each metric was
scanned, and which (metric, window end) a sweep has claimed."""

from __future__ import annotations

import redis

from common import redis_keys as keys
from common.redis_errors import redis_errors

# SET key to ARGV[1] if it is unset or holds a smaller number; ARGV[2] is the TTL.
SET_IF_GREATER = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""
CLAIM_TTL_SECONDS = 24 * 3600


class ScanMarks:
    """Scan marks over one Redis client; outages come out as DependencyUnavailableError.
    Every time is epoch ms; the marks only ever move forward."""

    def __init__(self, client: redis.Redis):
        self.redis = client

    def _get(self, key: str) -> int | None:
        with redis_errors():
            raw = self.redis.get(key)
        return None if raw is None else int(raw)

    def _raise_to(self, key: str, value_ms: int, ttl_seconds: int) -> None:
        with redis_errors():
            self.redis.eval(SET_IF_GREATER, 1, key, value_ms, ttl_seconds)

    def cursor(self) -> int | None:
        """When the last sweep started (server time); None before the first."""
        return self._get(keys.scan_cursor())

    def advance_cursor(self, started_ms: int, ttl_seconds: int) -> None:
        self._raise_to(keys.scan_cursor(), started_ms, ttl_seconds)

    def scanned_through(self, metric_id: str) -> int | None:
        """The end (reading time, exclusive) of the last window scanned for the metric."""
        return self._get(keys.scan_scanned_through(metric_id))

    def advance_scanned_through(self, metric_id: str, end_ms: int, ttl_seconds: int) -> None:
        self._raise_to(keys.scan_scanned_through(metric_id), end_ms, ttl_seconds)

    def claim(self, metric_id: str, window_end_ms: int, job_id: str) -> bool:
        """Claim the scan of the metric up to this window end for `job_id`; False if a
        sweep already did."""
        key = keys.scan_window_claim(metric_id, window_end_ms)
        with redis_errors():
            return bool(self.redis.set(key, job_id, nx=True, ex=CLAIM_TTL_SECONDS))

    def release(self, metric_id: str, window_end_ms: int) -> None:
        """Give a claim up (its job could not be queued): the next sweep claims it again."""
        with redis_errors():
            self.redis.delete(keys.scan_window_claim(metric_id, window_end_ms))
