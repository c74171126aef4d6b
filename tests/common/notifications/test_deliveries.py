"""Delivery bookkeeping on the real store and Redis: giving up, deleted channels, lost tasks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import redis

from common.epoch import utc_now
from common.notifications.attempts import attempt_delivery
from common.notifications.delivery_log import DeliveryLog
from common.notifications.dispatch import notify_incidents, queue_test
from common.notifications.models import Delivery, NotificationChannel
from common.queue import JobQueue, producer_app
from common.settings import Settings
from common.stores import Repositories
from tests.support import free_port
from tests.worker.support import WorkerProcess, wait_for
from tests.worker.webhook_receiver import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


class NoQueue:
    """Stands for a queue whose message was lost: the delivery exists, no task runs it."""

    def enqueue_delivery(self, delivery_id: str) -> None:
        pass


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """Retries every 0.2 s, given up after 1 s; 127.0.0.1 allowed."""
    return settings.model_copy(
        update={
            "webhook_allowed_hosts": "127.0.0.1",
            "webhook_retry_first_seconds": 0.2,
            "webhook_retry_max_seconds": 0.2,
            "webhook_retry_for_seconds": 1,
        }
    )


@pytest.fixture
def deliveries(settings: Settings) -> Iterator[DeliveryLog]:
    client = redis.Redis.from_url(settings.redis_url or "")
    yield DeliveryLog(client, settings)
    client.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1, stopped after the test."""
    started = Receiver().start()
    yield started
    started.stop()


def webhook_channel(client: httpx.Client, store: Repositories, url: str) -> NotificationChannel:
    """A webhook channel to `url`, made through the API, as the store holds it."""
    created = client.post("/api/notification-channels", json={"type": "webhook", "url": url})
    channel = store.channels.get(client.user.id, created.json()["id"])  # type: ignore[attr-defined]
    assert channel is not None
    return channel


def test_delivery_gives_up_after_the_retry_window(
    client: httpx.Client, store: Repositories, deliveries: DeliveryLog, fast: Settings
) -> None:
    channel = webhook_channel(client, store, f"http://127.0.0.1:{free_port()}/nobody")
    delivery = queue_test(deliveries, NoQueue(), channel)
    first = attempt_delivery(delivery.id, store.channels, deliveries, fast)
    assert first.outcome == "retry" and first.retry_in_seconds == pytest.approx(0.2)
    outcomes = [first.outcome]
    deadline = time.monotonic() + 10
    while outcomes[-1] == "retry" and time.monotonic() < deadline:
        time.sleep(0.2)
        outcomes.append(attempt_delivery(delivery.id, store.channels, deliveries, fast).outcome)
    assert outcomes[-1] == "failed"
    final = deliveries.get(delivery.id)
    assert final is not None and final.status == "failed" and final.attempts == len(outcomes)
    assert "ConnectError" in (final.last_error or "") and final.next_attempt_at is None
    # Failed is final: another task for it does nothing.
    assert attempt_delivery(delivery.id, store.channels, deliveries, fast).outcome == "skipped"


def test_pending_delivery_to_a_deleted_channel_fails_unsent(
    client: httpx.Client,
    store: Repositories,
    deliveries: DeliveryLog,
    fast: Settings,
    receiver: Receiver,
) -> None:
    channel = webhook_channel(client, store, receiver.url)
    delivery = queue_test(deliveries, NoQueue(), channel)
    assert client.delete(f"/api/notification-channels/{channel.id}").status_code == 204
    assert attempt_delivery(delivery.id, store.channels, deliveries, fast).outcome == "failed"
    final = deliveries.get(delivery.id)
    assert final is not None and final.last_error == "the channel was deleted"
    assert receiver.received == []


def test_sweep_queues_again_a_delivery_whose_task_was_lost(
    client: httpx.Client,
    store: Repositories,
    deliveries: DeliveryLog,
    settings: Settings,
    celery_worker: WorkerProcess,
    receiver: Receiver,
) -> None:
    channel = webhook_channel(client, store, receiver.url)
    # Created three minutes ago, and its task never ran (the worker died holding it).
    lost = Delivery(
        id="dlv_lost_" + channel.id, channel_id=channel.id, owner_id=channel.owner_id,
        event_id="evt_lost_" + channel.id, event="test", incident_id=None, status="pending",
        created_at=utc_now() - timedelta(minutes=3),
        payload=json.dumps({"event_id": "evt_lost_" + channel.id, "event": "test"}),
    )  # fmt: skip
    assert deliveries.create(lost)
    queue = JobQueue(producer_app(settings, settings.redis_url or ""))
    report = notify_incidents(store, deliveries, queue, settings)
    assert report.redriven >= 1
    wait_for(lambda: receiver.processed, 30, "the lost delivery to arrive")
    assert list(receiver.processed) == [lost.event_id]
    done = wait_for(
        lambda: (d := deliveries.get(lost.id)) is not None and d.status == "delivered" and d,
        30,
        "the delivery log to say delivered",
    )
    assert done.attempts == 1
    # Delivered: off the due set, so the next sweep leaves it alone.
    assert lost.id not in deliveries.overdue(utc_now(), 10_000)
    client.delete(f"/api/notification-channels/{channel.id}")
