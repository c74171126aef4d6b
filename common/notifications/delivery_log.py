"""Delivery records in Redis (one JSON document each), each channel's list, the due set."""

from __future__ import annotations

from datetime import datetime

import redis

from common import redis_keys as keys
from common.epoch import to_epoch_ms
from common.notifications.models import Delivery
from common.redis_errors import redis_errors
from common.settings import Settings


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class DeliveryLog:
    """Delivery records over one Redis client; outages come out as DependencyUnavailableError."""

    def __init__(self, client: redis.Redis, settings: Settings):
        self.redis = client
        self.ttl_seconds = settings.job_record_ttl_seconds
        self.kept = settings.webhook_deliveries_kept

    def create(self, delivery: Delivery) -> bool:
        """Store a new delivery; False if one with its id exists (the event was queued)."""
        log_key = keys.channel_deliveries(delivery.channel_id)
        created_ms = to_epoch_ms(delivery.created_at)
        with redis_errors():
            if not self.redis.set(
                keys.delivery(delivery.id),
                delivery.model_dump_json(),
                nx=True,
                ex=self.ttl_seconds,
            ):
                return False
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(log_key, {delivery.id: created_ms})
                pipe.zremrangebyrank(log_key, 0, -self.kept - 1)
                pipe.expire(log_key, self.ttl_seconds)
                pipe.zadd(keys.deliveries_due(), {delivery.id: created_ms})
                pipe.execute()
        return True

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

    def list_for_channel(self, channel_id: str, limit: int) -> list[Delivery]:
        """The channel's deliveries, newest first (expired ones skipped)."""
        with redis_errors():
            ids = self.redis.zrevrange(keys.channel_deliveries(channel_id), 0, limit - 1)
            raws = self.redis.mget([keys.delivery(_text(i)) for i in ids]) if ids else []
        return [Delivery.model_validate_json(raw) for raw in raws if raw is not None]

    def lease(self, delivery_id: str, seconds: int) -> bool:
        with redis_errors():
            return bool(self.redis.set(keys.delivery_lease(delivery_id), "1", nx=True, ex=seconds))

    def release(self, delivery_id: str) -> None:
        with redis_errors():
            self.redis.delete(keys.delivery_lease(delivery_id))

    def postpone(self, delivery_id: str, until: datetime) -> None:
        """Move a due delivery later in the due set, so the next sweep leaves it alone."""
        with redis_errors():
            self.redis.zadd(keys.deliveries_due(), {delivery_id: to_epoch_ms(until)}, xx=True)

    def overdue(self, before: datetime, limit: int) -> list[str]:
        """Pending deliveries whose next attempt was due before `before`."""
        with redis_errors():
            ids = self.redis.zrangebyscore(
                keys.deliveries_due(), "-inf", to_epoch_ms(before), start=0, num=limit
            )
        return [_text(i) for i in ids]
