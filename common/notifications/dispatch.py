"""Events to deliveries: the incident sweep over the outbox, test events, lost retries."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from common.epoch import utc_now
from common.errors import LimitExceededError
from common.incidents.building import IncidentGraph
from common.incidents.detail import incident_detail
from common.notifications.delivery_log import DeliveryLog
from common.notifications.formats import render
from common.notifications.models import Delivery, NotificationChannel
from common.notifications.payloads import (
    event_id_of,
    incident_event,
    incident_payload,
    test_payload,
)
from common.notifications.repository import ChannelRepository
from common.settings import Settings

NOTIFY_BATCH = 200  # incidents per sweep step
TEST_WINDOW_SECONDS = 60  # WEBHOOK_TESTS_PER_MINUTE counts test events in windows this long
TEST_DELIVERY_TTL_SECONDS = 24 * 3600  # a test delivery's record is kept this long
# A due delivery this late is taken as lost (its task died) and queued again.
REDRIVE_AFTER = timedelta(minutes=2)


class DeliveryQueue(Protocol):
    def enqueue_delivery(self, delivery_id: str) -> None: ...


class NotifierGraph(IncidentGraph, Protocol):
    """What the incident sweep reads: incidents, and the owners' channels."""

    @property
    def channels(self) -> ChannelRepository: ...


def delivery_id_of(channel_id: str, event_id: str) -> str:
    return "dlv_" + hashlib.sha256(f"{channel_id}\x00{event_id}".encode()).hexdigest()[:32]


def queue_event(
    deliveries: DeliveryLog,
    queue: DeliveryQueue,
    channel: NotificationChannel,
    event_id: str,
    event: str,
    incident_id: str | None,
    payload: dict[str, Any],
    ttl_seconds: int | None = None,
) -> Delivery:
    """Create the delivery of one event to one channel, in the channel's format, and queue
    it (once per event). It is kept `ttl_seconds` (default JOB_RECORD_TTL_SECONDS)."""
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
    if deliveries.create(delivery, ttl_seconds):
        queue.enqueue_delivery(delivery.id)
        return delivery
    existing = deliveries.get(delivery.id)
    return existing or delivery


def queue_test(
    deliveries: DeliveryLog,
    queue: DeliveryQueue,
    channel: NotificationChannel,
    settings: Settings,
) -> Delivery:
    """Queue a test event to the channel: at most WEBHOOK_TESTS_PER_MINUTE a minute per
    owner (LimitExceededError beyond), each kept a day (not the 30 days of incident events)."""
    count, window_left = deliveries.count_test(channel.owner_id, TEST_WINDOW_SECONDS)
    if count > settings.webhook_tests_per_minute:
        raise LimitExceededError(
            f"at most {settings.webhook_tests_per_minute} test events a minute: try again "
            f"in {window_left} s",
            retry_after_seconds=window_left,
        )
    event_id = "evt_test_" + secrets.token_hex(12)
    payload = test_payload(event_id, channel)
    return queue_event(
        deliveries, queue, channel, event_id, "test", None, payload, TEST_DELIVERY_TTL_SECONDS
    )


@dataclass
class SweepReport:
    resolved: list[str]
    events: int
    deliveries: int
    redriven: int


def notify_incidents(
    graph: NotifierGraph,
    deliveries: DeliveryLog,
    queue: DeliveryQueue,
    settings: Settings,
) -> SweepReport:
    """Resolve quiet incidents, queue deliveries of every change not yet notified, and queue
    again the deliveries whose retry was lost. Called by beat's incident sweep."""
    incidents = graph.incidents
    resolved = incidents.resolve_quiet(settings.incident_resolve_seconds * 1000)
    report = SweepReport(resolved=resolved, events=0, deliveries=0, redriven=0)
    for pending in incidents.to_notify(NOTIFY_BATCH):
        incident = incidents.get_unscoped(pending.incident_id)
        if incident is None:
            continue
        owner_channels = graph.channels.list_owned(pending.owner_id)
        if owner_channels:
            detail = incident_detail(graph, incident, settings.incident_max_hops)
            event_id = event_id_of(incident.id, incident.revision)
            event = incident_event(incident.status, pending.notified_revision)
            payload = incident_payload(event_id, event, detail)
            for channel in owner_channels:
                queue_event(deliveries, queue, channel, event_id, event, incident.id, payload)
                report.deliveries += 1
            report.events += 1
        incidents.mark_notified(incident.id, incident.revision)
    report.redriven = redrive_overdue(deliveries, queue)
    return report


def redrive_overdue(deliveries: DeliveryLog, queue: DeliveryQueue) -> int:
    overdue = deliveries.overdue(utc_now() - REDRIVE_AFTER, NOTIFY_BATCH)
    for delivery_id in overdue:
        deliveries.postpone(delivery_id, utc_now() + REDRIVE_AFTER)
        queue.enqueue_delivery(delivery_id)
    return len(overdue)
