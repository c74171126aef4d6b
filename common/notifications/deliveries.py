"""Incident changes to webhook deliveries, and each delivery's attempts, at least once.

How a change reaches a receiver:
 1. Building incidents (or resolving one) bumps the incident's `revision` in the graph.
 2. The incident sweep (`notify_incidents`) reads incidents whose revision is ahead of
    `notified_revision` (an outbox in the graph), creates one delivery per channel of the
    owner, queues a delivery task for each, and only then marks the revision notified. A
    crash in between repeats the step, and a delivery's id is derived from (channel,
    event), so a repeat creates nothing twice.
 3. The delivery task (`attempt_delivery`) POSTs the signed payload. A failure is retried
    with backoff (WEBHOOK_RETRY_FIRST_SECONDS doubling up to WEBHOOK_RETRY_MAX_SECONDS)
    until WEBHOOK_RETRY_FOR_SECONDS after the delivery was created, then it is marked
    failed. A lease makes sure one attempt at a time runs for a delivery.
 4. A delivery whose retry was lost (a worker died holding it) is found by the sweep in
    the due set and queued again.

Receivers may see an event twice (at least once): `event_id` is stable, dedup on it.
Delivery records live in Redis for JOB_RECORD_TTL_SECONDS; each channel lists its last
WEBHOOK_DELIVERIES_KEPT.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import redis

from common.graph.store import GraphStore
from common.incidents.detail import IncidentDetail, incident_detail
from common.jobs.keys import PREFIX
from common.models import utc_now
from common.notifications.formats import render
from common.notifications.models import Delivery, NotificationChannel
from common.notifications.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    EVENT_ID_HEADER,
    UnsafeWebhookError,
    allowed_hosts,
    post_webhook,
    resolve_webhook,
)
from common.redis_errors import redis_errors
from common.settings import Settings

log = logging.getLogger(__name__)

SCHEMA = "neonomaly.webhook.v1"
CAUSES_IN_PAYLOAD = 5
NOTIFY_BATCH = 200  # incidents per sweep step
# A due delivery this late is taken as lost (its task died) and queued again.
REDRIVE_AFTER = timedelta(minutes=2)
DUE_SLACK = timedelta(seconds=1)


class DeliveryQueue(Protocol):
    def enqueue_delivery(self, delivery_id: str) -> None: ...


def _delivery_key(delivery_id: str) -> str:
    return f"{PREFIX}:delivery:{delivery_id}"


def _lease_key(delivery_id: str) -> str:
    return f"{PREFIX}:delivery:{delivery_id}:lease"


def _channel_log_key(channel_id: str) -> str:
    """Sorted set of a channel's delivery ids by creation time (epoch ms)."""
    return f"{PREFIX}:channel:{channel_id}:deliveries"


DUE_KEY = f"{PREFIX}:deliveries:due"  # pending delivery ids scored by next attempt (ms)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def event_id_of(incident_id: str, revision: int) -> str:
    """The same change of the same incident always has the same event id."""
    return "evt_" + hashlib.sha256(f"{incident_id}\x00{revision}".encode()).hexdigest()[:32]


def delivery_id_of(channel_id: str, event_id: str) -> str:
    return "dlv_" + hashlib.sha256(f"{channel_id}\x00{event_id}".encode()).hexdigest()[:32]


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


# --- payloads -----------------------------------------------------------------------------
def incident_event(status: str, notified_revision: int) -> str:
    """What people are told: opened (their first word of it), updated, or resolved.

    Changes between two sweeps are told as one event about the incident as it is now.
    """
    if status == "resolved":
        return "incident.resolved"
    return "incident.opened" if notified_revision == 0 else "incident.updated"


def incident_payload(event_id: str, event: str, detail: IncidentDetail) -> dict[str, Any]:
    """The documented webhook body of an incident event (README: Incidents and notifications)."""
    incident = detail.model_dump(
        mode="json",
        include={
            "id", "status", "title", "summary", "services", "opened_at", "updated_at",
            "started_at", "ended_at", "members", "acknowledged_at", "resolved_at",
            "resolved_by", "revision",
        },
    )  # fmt: skip
    incident["probable_causes"] = [
        cause.model_dump(mode="json") for cause in detail.probable_causes[:CAUSES_IN_PAYLOAD]
    ]
    incident["url"] = f"/api/incidents/{detail.id}"
    return {
        "schema": SCHEMA,
        "event_id": event_id,
        "event": event,
        "occurred_at": utc_now().isoformat(),
        "incident": incident,
    }


def test_payload(event_id: str, channel: NotificationChannel) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "event_id": event_id,
        "event": "test",
        "occurred_at": utc_now().isoformat(),
        "channel_id": channel.id,
        "message": "a test notification from Neonomaly: this channel works",
    }


# --- the delivery log ---------------------------------------------------------------------
class DeliveryLog:
    """Delivery records in Redis (one JSON document each) and each channel's list."""

    def __init__(self, client: redis.Redis, settings: Settings):
        self.redis = client
        self.ttl_seconds = settings.job_record_ttl_seconds
        self.kept = settings.webhook_deliveries_kept

    def create(self, delivery: Delivery) -> bool:
        """Store a new delivery; False if one with its id exists (the event was queued)."""
        log_key = _channel_log_key(delivery.channel_id)
        created_ms = _ms(delivery.created_at)
        with redis_errors():
            if not self.redis.set(
                _delivery_key(delivery.id),
                delivery.model_dump_json(),
                nx=True,
                ex=self.ttl_seconds,
            ):
                return False
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.zadd(log_key, {delivery.id: created_ms})
                pipe.zremrangebyrank(log_key, 0, -self.kept - 1)
                pipe.expire(log_key, self.ttl_seconds)
                pipe.zadd(DUE_KEY, {delivery.id: created_ms})
                pipe.execute()
        return True

    def get(self, delivery_id: str) -> Delivery | None:
        with redis_errors():
            raw = self.redis.get(_delivery_key(delivery_id))
        return None if raw is None else Delivery.model_validate_json(raw)

    def save(self, delivery: Delivery) -> None:
        """Store the delivery's new state; off the due set once delivered or failed."""
        with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.set(_delivery_key(delivery.id), delivery.model_dump_json(), keepttl=True)
            if delivery.status == "pending" and delivery.next_attempt_at is not None:
                pipe.zadd(DUE_KEY, {delivery.id: _ms(delivery.next_attempt_at)})
            else:
                pipe.zrem(DUE_KEY, delivery.id)
            pipe.execute()

    def list_for_channel(self, channel_id: str, limit: int) -> list[Delivery]:
        """The channel's deliveries, newest first (expired ones skipped)."""
        with redis_errors():
            ids = self.redis.zrevrange(_channel_log_key(channel_id), 0, limit - 1)
            raws = self.redis.mget([_delivery_key(_text(i)) for i in ids]) if ids else []
        return [Delivery.model_validate_json(raw) for raw in raws if raw is not None]

    def lease(self, delivery_id: str, seconds: int) -> bool:
        with redis_errors():
            return bool(self.redis.set(_lease_key(delivery_id), "1", nx=True, ex=seconds))

    def release(self, delivery_id: str) -> None:
        with redis_errors():
            self.redis.delete(_lease_key(delivery_id))

    def postpone(self, delivery_id: str, until: datetime) -> None:
        """Move a due delivery later in the due set, so the next sweep leaves it alone."""
        with redis_errors():
            self.redis.zadd(DUE_KEY, {delivery_id: _ms(until)}, xx=True)

    def overdue(self, before: datetime, limit: int) -> list[str]:
        """Pending deliveries whose next attempt was due before `before`."""
        with redis_errors():
            ids = self.redis.zrangebyscore(DUE_KEY, "-inf", _ms(before), start=0, num=limit)
        return [_text(i) for i in ids]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- creating deliveries ------------------------------------------------------------------
def queue_event(
    deliveries: DeliveryLog,
    queue: DeliveryQueue,
    channel: NotificationChannel,
    event_id: str,
    event: str,
    incident_id: str | None,
    payload: dict[str, Any],
) -> Delivery:
    """Create the delivery of one event to one channel, in the channel's format, and queue
    it (once per event)."""
    delivery = Delivery(
        id=delivery_id_of(channel.id, event_id),
        channel_id=channel.id,
        owner_id=channel.owner_id,
        event_id=event_id,
        event=event,
        incident_id=incident_id,
        status="pending",
        created_at=utc_now(),
        payload=json.dumps(render(channel.format, payload), separators=(",", ":"), sort_keys=True),
    )
    if deliveries.create(delivery):
        queue.enqueue_delivery(delivery.id)
        return delivery
    existing = deliveries.get(delivery.id)
    return existing or delivery


def queue_test(
    deliveries: DeliveryLog, queue: DeliveryQueue, channel: NotificationChannel
) -> Delivery:
    event_id = "evt_test_" + secrets.token_hex(12)
    return queue_event(
        deliveries, queue, channel, event_id, "test", None, test_payload(event_id, channel)
    )


@dataclass
class SweepReport:
    resolved: list[str]
    events: int
    deliveries: int
    redriven: int


def notify_incidents(
    store: GraphStore, deliveries: DeliveryLog, queue: DeliveryQueue, settings: Settings
) -> SweepReport:
    """Resolve quiet incidents, queue deliveries of every change not yet notified, and queue
    again the deliveries whose retry was lost. Called by beat's incident sweep."""
    resolved = store.resolve_quiet_incidents(settings.incident_resolve_seconds * 1000)
    report = SweepReport(resolved=resolved, events=0, deliveries=0, redriven=0)
    for incident_id, owner_id, notified_revision in store.incidents_to_notify(NOTIFY_BATCH):
        incident = store.get_incident_by_id(incident_id)
        if incident is None:
            continue
        channels = store.list_channels(owner_id)
        if channels:
            detail = incident_detail(store, incident, settings.incident_max_hops)
            event_id = event_id_of(incident.id, incident.revision)
            event = incident_event(incident.status, notified_revision)
            payload = incident_payload(event_id, event, detail)
            for channel in channels:
                queue_event(deliveries, queue, channel, event_id, event, incident.id, payload)
                report.deliveries += 1
            report.events += 1
        store.mark_incident_notified(incident.id, incident.revision)
    report.redriven = redrive_overdue(deliveries, queue)
    return report


def redrive_overdue(deliveries: DeliveryLog, queue: DeliveryQueue) -> int:
    overdue = deliveries.overdue(utc_now() - REDRIVE_AFTER, NOTIFY_BATCH)
    for delivery_id in overdue:
        deliveries.postpone(delivery_id, utc_now() + REDRIVE_AFTER)
        queue.enqueue_delivery(delivery_id)
    return len(overdue)


# --- attempts -----------------------------------------------------------------------------
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
    delivery_id: str, store: GraphStore, deliveries: DeliveryLog, settings: Settings
) -> AttemptOutcome:
    """One attempt of a delivery; says whether (and when) to try again."""
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
        channel = store.get_channel(delivery.owner_id, delivery.channel_id)
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
