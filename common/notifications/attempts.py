"""One attempt of a delivery: leased, counted, signed, POSTed, and what to do next.

The lease: a Redis key set (NX) to a token of this attempt's own, for longer than the
task may run (common.queue.delivery_time_limits: the hard limit kills the attempt first),
so two attempts of one delivery never overlap; it is released by compare-and-delete, so an
attempt can only ever release its own lease.

Every attempt counts: it is recorded (attempts + 1, `last_error` saying it has not
finished, the next attempt scheduled) before the POST, so an attempt cut short by the
time limit, or by its worker dying, still counts and still brings the give-up time
(WEBHOOK_RETRY_FOR_SECONDS after creation) closer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from common.epoch import utc_now
from common.notifications.delivery_log import DeliveryLog
from common.notifications.models import Delivery, NotificationChannel
from common.notifications.repository import ChannelRepository
from common.notifications.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    EVENT_ID_HEADER,
    Attempt,
    UnsafeWebhookError,
    allowed_hosts,
    post_webhook,
    resolve_webhook,
)
from common.own_metrics import WEBHOOK_DELIVERIES
from common.queue import delivery_time_limits
from common.settings import Settings

log = logging.getLogger(__name__)

DUE_SLACK = timedelta(seconds=1)
# What the record says while an attempt runs; if it stays, the attempt never finished.
UNFINISHED = "no outcome yet: the last attempt is still running, or its worker stopped"
Outcome = Literal["delivered", "retry", "failed", "skipped"]


@dataclass(frozen=True)
class AttemptOutcome:
    outcome: Outcome
    retry_in_seconds: float = 0.0


def retry_delay(settings: Settings, attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: first, doubling, capped."""
    delay = settings.webhook_retry_first_seconds * 2 ** max(attempts - 1, 0)
    return float(min(delay, settings.webhook_retry_max_seconds))


def lease_seconds(settings: Settings) -> int:
    """Longer than an attempt can run: its task is killed at the hard time limit first."""
    _, hard = delivery_time_limits(settings)
    return hard + 5


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
    token = deliveries.lease(delivery_id, lease_seconds(settings))
    if token is None:
        return AttemptOutcome("skipped")  # another attempt is running; it decides
    try:
        delivery = deliveries.get(delivery_id)
        if delivery is None:  # expired: nothing left to send, never to be queued again
            deliveries.forget_due(delivery_id)
            return AttemptOutcome("skipped")
        if delivery.status != "pending":
            return AttemptOutcome("skipped")
        now = utc_now()
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > now + DUE_SLACK:
            # A second task for this delivery (queued again by the sweep) while the retry
            # scheduled by the first is still to come: that one makes the attempt.
            return AttemptOutcome("skipped")
        if delivery.attempts and now > give_up_at(delivery, settings):
            # Past its time with attempts that never finished (their worker kept dying):
            # the failure below, which those attempts never reached.
            return _give_up(delivery, deliveries, delivery.last_error or UNFINISHED)
        channel = channels.get(delivery.owner_id, delivery.channel_id)
        if channel is None:
            delivery.status, delivery.last_error = "failed", "the channel was deleted"
            deliveries.save(delivery)
            return AttemptOutcome("failed")
        return _attempt(delivery, channel, deliveries, settings)
    finally:
        if not deliveries.release(delivery_id, token):
            log.warning("delivery %s: the attempt outlived its lease", delivery_id)


def give_up_at(delivery: Delivery, settings: Settings) -> datetime:
    return delivery.created_at + timedelta(seconds=settings.webhook_retry_for_seconds)


def _attempt(
    delivery: Delivery, channel: NotificationChannel, deliveries: DeliveryLog, settings: Settings
) -> AttemptOutcome:
    now = utc_now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_error = UNFINISHED
    # Where the sweep finds it (due, then overdue) if this attempt never comes back.
    delivery.next_attempt_at = now + timedelta(seconds=retry_delay(settings, delivery.attempts))
    deliveries.save(delivery)
    try:
        result = _send(delivery, channel, settings)
    except UnsafeWebhookError as exc:  # the host now resolves inside the network
        delivery.status, delivery.last_error = "failed", str(exc)
        delivery.next_attempt_at = None
        deliveries.save(delivery)
        return AttemptOutcome("failed")
    except Exception as exc:  # the task's soft time limit, say: a failed attempt like others
        result = Attempt(False, None, f"the attempt was stopped ({type(exc).__name__})")
    delivery.last_status_code = result.status_code
    if result.delivered:
        delivery.status, delivery.delivered_at = "delivered", utc_now()
        delivery.next_attempt_at, delivery.last_error = None, None
        deliveries.save(delivery)
        return AttemptOutcome("delivered")
    delivery.last_error = result.error
    delay = retry_delay(settings, delivery.attempts)
    if now + timedelta(seconds=delay) > give_up_at(delivery, settings):
        return _give_up(delivery, deliveries, result.error)
    delivery.next_attempt_at = now + timedelta(seconds=delay)
    deliveries.save(delivery)
    return AttemptOutcome("retry", delay)


def _send(delivery: Delivery, channel: NotificationChannel, settings: Settings) -> Attempt:
    try:
        target = resolve_webhook(channel.url, allowed_hosts(settings.webhook_allowed_hosts))
    except OSError as exc:
        # Not the URL itself: its path can be a secret (Slack's webhook URLs are).
        return Attempt(False, None, f"cannot resolve the webhook URL's host: {exc}")
    return post_webhook(
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


def _give_up(delivery: Delivery, deliveries: DeliveryLog, error: str | None) -> AttemptOutcome:
    delivery.status, delivery.next_attempt_at, delivery.last_error = "failed", None, error
    deliveries.save(delivery)
    log.warning(
        "delivery %s failed for good after %d attempts: %s", delivery.id, delivery.attempts, error
    )
    return AttemptOutcome("failed")
