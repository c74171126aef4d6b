"""One attempt of a delivery: leased, signed, POSTed, and what to do next (retry or not)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from common.epoch import utc_now
from common.notifications.delivery_log import DeliveryLog
from common.notifications.models import Delivery, NotificationChannel
from common.notifications.repository import ChannelRepository
from common.notifications.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    EVENT_ID_HEADER,
    UnsafeWebhookError,
    allowed_hosts,
    post_webhook,
    resolve_webhook,
)
from common.own_metrics import WEBHOOK_DELIVERIES
from common.settings import Settings

log = logging.getLogger(__name__)

DUE_SLACK = timedelta(seconds=1)
Outcome = Literal["delivered", "retry", "failed", "skipped"]


@dataclass(frozen=True)
class AttemptOutcome:
    outcome: Outcome
    retry_in_seconds: float = 0.0


def retry_delay(settings: Settings, attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: first, doubling, capped."""
    delay = settings.webhook_retry_first_seconds * 2 ** max(attempts - 1, 0)
    return float(min(delay, settings.webhook_retry_max_seconds))


def attempt_delivery(
    delivery_id: str, channels: ChannelRepository, deliveries: DeliveryLog, settings: Settings
) -> AttemptOutcome:
    """One attempt of a delivery; says whether (and when) to try again."""
    outcome = _leased_attempt(delivery_id, channels, deliveries, settings)
    if outcome.outcome != "skipped":  # delivered, retry or failed
        WEBHOOK_DELIVERIES.labels(outcome.outcome).inc()
    return outcome


def _leased_attempt(
    delivery_id: str, channels: ChannelRepository, deliveries: DeliveryLog, settings: Settings
) -> AttemptOutcome:
    lease_seconds = int(settings.webhook_timeout_seconds * 3) + 5
    if not deliveries.lease(delivery_id, lease_seconds):
        return AttemptOutcome("skipped")  # another attempt is running; it decides
    try:
        delivery = deliveries.get(delivery_id)
        if delivery is None or delivery.status != "pending":
            return AttemptOutcome("skipped")
        if (
            delivery.next_attempt_at is not None
            and delivery.next_attempt_at > utc_now() + DUE_SLACK
        ):
            # A second task for this delivery (queued again by the sweep) while the retry
            # scheduled by the first is still to come: that one makes the attempt.
            return AttemptOutcome("skipped")
        channel = channels.get(delivery.owner_id, delivery.channel_id)
        if channel is None:
            delivery.status, delivery.last_error = "failed", "the channel was deleted"
            deliveries.save(delivery)
            return AttemptOutcome("failed")
        return _attempt(delivery, channel, deliveries, settings)
    finally:
        deliveries.release(delivery_id)


def _attempt(
    delivery: Delivery, channel: NotificationChannel, deliveries: DeliveryLog, settings: Settings
) -> AttemptOutcome:
    now = utc_now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    try:
        target = resolve_webhook(channel.url, allowed_hosts(settings.webhook_allowed_hosts))
    except UnsafeWebhookError as exc:  # the host now resolves inside the network
        delivery.status, delivery.last_error = "failed", str(exc)
        delivery.next_attempt_at = None
        deliveries.save(delivery)
        return AttemptOutcome("failed")
    except OSError as exc:
        result_error: str | None = f"cannot resolve {channel.url}: {exc}"
        delivered, status_code = False, None
    else:
        attempt = post_webhook(
            target,
            delivery.payload.encode(),
            channel.secret.get_secret_value(),
            {
                EVENT_HEADER: delivery.event,
                EVENT_ID_HEADER: delivery.event_id,
                DELIVERY_HEADER: delivery.id,
            },
            settings.webhook_timeout_seconds,
        )
        delivered, status_code, result_error = attempt.delivered, attempt.status_code, attempt.error
    delivery.last_status_code = status_code
    if delivered:
        delivery.status, delivery.delivered_at = "delivered", utc_now()
        delivery.next_attempt_at = None
        deliveries.save(delivery)
        return AttemptOutcome("delivered")
    delivery.last_error = result_error
    delay = retry_delay(settings, delivery.attempts)
    give_up_at = delivery.created_at + timedelta(seconds=settings.webhook_retry_for_seconds)
    if now + timedelta(seconds=delay) > give_up_at:
        delivery.status, delivery.next_attempt_at = "failed", None
        deliveries.save(delivery)
        log.warning("delivery %s failed for good: %s", delivery.id, result_error)
        return AttemptOutcome("failed")
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    deliveries.save(delivery)
    return AttemptOutcome("retry", delay)
