"""Delivery records in Redis (one JSON document each), each channel's list, the due set,
the per-delivery lease and the rate of test events."""

from __future__ import annotations

import secrets
from datetime import datetime

import redis

from common import redis_keys as keys
from common.epoch import to_epoch_ms
from common.notifications.models import Delivery
from common.redis_errors import redis_errors
from common.settings import Settings

# Deletes the lease only if it still holds the caller's token: an attempt that outlived its
# lease must not delete the lease of the attempt that took over.
RELEASE_LEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
# Counts a test event in the owner's current window; the window's first event starts it.
COUNT_TEST = """
local count = redis.call('incr', KEYS[1])
if count == 1 then
    redis.call('expire', KEYS[1], ARGV[1])
end
return {count, redis.call('ttl', KEYS[1])}
"""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class DeliveryLog:
    """Delivery records over one Redis client; outages come out as DependencyUnavailableError."""

    def __init__(self, client: redis.Redis, settings: Settings):
        self.redis = client
        self.ttl_seconds = settings.job_record_ttl_seconds
        self.kept = settings.webhook_deliveries_kept
        self._release = client.register_script(RELEASE_LEASE)
        self._count_test = client.register_script(COUNT_TEST)

    def create(self, delivery: Delivery, ttl_seconds: int | None = None) -> bool:
        """Store a new delivery; False if one with its id exists (the event was queued).

        The channel's list keeps its newest WEBHOOK_DELIVERIES_KEPT; the records that fall
        off it are deleted with it, unless still pending (those finish, then expire).
        """
        log_key = keys.channel_deliveries(delivery.channel_id)
        created_ms = to_epoch_ms(delivery.created_at)
        ttl = ttl_seconds or self.ttl_seconds
        with redis_errors():
            if not self.redis.set(
                keys.delivery(delivery.id), delivery.model_dump_json(), nx=True, ex=ttl
            ):
                return False
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(log_key, {delivery.id: created_ms})
                pipe.zrange(log_key, 0, -self.kept - 1)
                pipe.zremrangebyrank(log_key, 0, -self.kept - 1)
                pipe.expire(log_key, self.ttl_seconds)
                pipe.zadd(keys.deliveries_due(), {delivery.id: created_ms})
                dropped = [_text(i) for i in pipe.execute()[1]]
            if dropped:
                self._delete_finished(dropped)
        return True

    def _delete_finished(self, delivery_ids: list[str]) -> None:
        raws = self.redis.mget([keys.delivery(i) for i in delivery_ids])
        finished = [
            keys.delivery(delivery_id)
            for delivery_id, raw in zip(delivery_ids, raws, strict=True)
            if raw is not None and Delivery.model_validate_json(raw).status != "pending"
        ]
        if finished:
            self.redis.delete(*finished)

    def get(self, delivery_id: str) -> Delivery | None:
        with redis_errors():
            raw = self.redis.get(keys.delivery(delivery_id))
        return None if raw is None else Delivery.model_validate_json(raw)

    def save(self, delivery: Delivery) -> None:
        """Store the delivery's new state; off the due set once delivered or failed."""
        with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.delivery(delivery.id), delivery.model_dump_json(), keepttl=True)
            if delivery.status == "pending" and delivery.next_attempt_at is not None:
                pipe.zadd(
                    keys.deliveries_due(), {delivery.id: to_epoch_ms(delivery.next_attempt_at)}
                )
            else:
                pipe.zrem(keys.deliveries_due(), delivery.id)
            pipe.execute()

    def forget_due(self, delivery_id: str) -> None:
        """Off the due set: its record expired, so there is nothing left to send."""
        with redis_errors():
            self.redis.zrem(keys.deliveries_due(), delivery_id)

    def list_for_channel(self, channel_id: str, limit: int) -> list[Delivery]:
        """The channel's deliveries, newest first (expired ones skipped)."""
        with redis_errors():
            ids = self.redis.zrevrange(keys.channel_deliveries(channel_id), 0, limit - 1)
            raws = self.redis.mget([keys.delivery(_text(i)) for i in ids]) if ids else []
        return [Delivery.model_validate_json(raw) for raw in raws if raw is not None]

    def lease(self, delivery_id: str, seconds: int) -> str | None:
        """Hold the delivery for one attempt: a token to release it with, or None if another
        attempt holds it. The lease expires by itself after `seconds`."""
        token = secrets.token_hex(16)
        with redis_errors():
            taken = self.redis.set(keys.delivery_lease(delivery_id), token, nx=True, ex=seconds)
        return token if taken else None

    def release(self, delivery_id: str, token: str) -> bool:
        """Release the lease if `token` still holds it; False if it had expired meanwhile."""
        with redis_errors():
            return bool(self._release(keys=[keys.delivery_lease(delivery_id)], args=[token]))

    def count_test(self, owner_id: str, window_seconds: int) -> tuple[int, int]:
        """Count a test event of the owner: (events in the current window, seconds left)."""
        with redis_errors():
            count, ttl = self._count_test(
                keys=[keys.owner_test_events(owner_id)], args=[window_seconds]
            )
        return int(count), max(int(ttl), 1)

    def postpone(self, delivery_id: str, until: datetime) -> None:
        """Move a due delivery later in the due set, so the next sweep leaves it alone."""
        with redis_errors():
            self.redis.zadd(keys.deliveries_due(), {delivery_id: to_epoch_ms(until)}, xx=True)

    def overdue(self, before: datetime, limit: int) -> list[str]:
        """Pending deliveries whose next attempt was due before `before`; ids whose record
        has expired are dropped from the due set instead (nothing is left to send)."""
        with redis_errors():
            ids = [
                _text(i)
                for i in self.redis.zrangebyscore(
                    keys.deliveries_due(), "-inf", to_epoch_ms(before), start=0, num=limit
                )
            ]
            if not ids:
                return []
            with self.redis.pipeline(transaction=False) as pipe:
                for delivery_id in ids:
                    pipe.exists(keys.delivery(delivery_id))
                present = pipe.execute()
            expired = [i for i, kept in zip(ids, present, strict=True) if not kept]
            if expired:
                self.redis.zrem(keys.deliveries_due(), *expired)
        return [i for i, kept in zip(ids, present, strict=True) if kept]
