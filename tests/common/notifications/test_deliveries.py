"""Delivery bookkeeping on the real store and Redis: giving up, deleted channels, lost tasks."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
import redis
from celery.exceptions import SoftTimeLimitExceeded

from common import redis_keys as keys
from common.epoch import utc_now
from common.errors import LimitExceededError
from common.ids import new_id
from common.notifications.attempts import attempt_delivery
from common.notifications.delivery_log import DeliveryLog
from common.notifications.dispatch import notify_incidents, queue_test
from common.notifications.models import Delivery, NotificationChannel
from common.queue import JobQueue, producer_app
from common.settings import Settings
from common.stores import Repositories
from tests.support import free_port
from tests.worker.support import WorkerProcess, wait_for
from tests.worker.webhook_receiver import Receiver, TricklingReceiver

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
    delivery = queue_test(deliveries, NoQueue(), channel, fast)
    first = attempt_delivery(delivery.id, store.channels, deliveries, fast)
    assert first.outcome == "retry" and first.retry_in_seconds == pytest.approx(0.2)
    outcomes = [first.outcome]
    deadline = time.monotonic() + 10
    while outcomes[-1] == "retry" and time.monotonic() < deadline:
        time.sleep(0.2)
        outcomes.append(attempt_delivery(delivery.id, store.channels, deliveries, fast).outcome)
    assert outcomes[-1] == "failed"
    final = deliveries.get(delivery.id)
    assert final is not None and final.status == "failed"
    # Every call made an attempt, but the last may have come after the give-up time (a
    # loaded machine): it fails the delivery without sending.
    assert final.attempts in (len(outcomes) - 1, len(outcomes)), outcomes
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
    delivery = queue_test(deliveries, NoQueue(), channel, fast)
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


class RecordingQueue:
    def __init__(self) -> None:
        self.queued: list[str] = []

    def enqueue_delivery(self, delivery_id: str) -> None:
        self.queued.append(delivery_id)


def test_a_lease_is_released_only_by_its_holder(deliveries: DeliveryLog) -> None:
    delivery_id = "dlv_lease_" + new_id()
    first = deliveries.lease(delivery_id, 1)
    assert first is not None and deliveries.lease(delivery_id, 1) is None
    time.sleep(1.2)  # the first attempt overran its lease: a second one takes it
    second = deliveries.lease(delivery_id, 30)
    assert second is not None and second != first
    # The first attempt ends: its release must not free the second one's lease.
    assert deliveries.release(delivery_id, first) is False
    assert deliveries.lease(delivery_id, 30) is None
    assert deliveries.release(delivery_id, second) is True
    assert deliveries.lease(delivery_id, 30) is not None


@pytest.mark.parametrize(
    ("status", "trickle", "outcome"),
    [(200, "headers", "retry"), (500, "body", "retry"), (200, "body", "delivered")],
    ids=["headers-trickled", "error-body-trickled", "ok-body-trickled"],
)
def test_an_attempt_has_one_deadline_in_all(
    client: httpx.Client,
    store: Repositories,
    deliveries: DeliveryLog,
    fast: Settings,
    status: int,
    trickle: str,
    outcome: str,
) -> None:
    # A byte every 0.3 s never trips a per-read timeout of 1 s: only a total deadline ends it.
    slow = TricklingReceiver(status=status, trickle=trickle, interval=0.3).start()
    try:
        settings = fast.model_copy(update={"webhook_timeout_seconds": 1.0})
        channel = webhook_channel(client, store, slow.url)
        delivery = queue_test(deliveries, NoQueue(), channel, settings)
        began = time.monotonic()
        result = attempt_delivery(delivery.id, store.channels, deliveries, settings)
        took = time.monotonic() - began
    finally:
        slow.stop()
    assert took < 3, took
    assert result.outcome == outcome
    logged = deliveries.get(delivery.id)
    assert logged is not None and logged.attempts == 1
    if outcome == "retry":
        assert logged.last_error is not None
        assert logged.last_error.startswith("no complete answer within 1 s")
    else:
        assert logged.status == "delivered" and logged.last_error is None


def test_an_attempt_cut_short_still_counts(
    client: httpx.Client, store: Repositories, deliveries: DeliveryLog, fast: Settings
) -> None:
    stalled = TricklingReceiver(trickle="headers", interval=5).start()

    def soft_time_limit(signum: int, frame: object) -> None:
        raise SoftTimeLimitExceeded  # as Celery's soft time limit does, from a signal

    previous = signal.signal(signal.SIGALRM, soft_time_limit)
    try:
        settings = fast.model_copy(update={"webhook_timeout_seconds": 30.0})
        channel = webhook_channel(client, store, stalled.url)
        delivery = queue_test(deliveries, NoQueue(), channel, settings)
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        result = attempt_delivery(delivery.id, store.channels, deliveries, settings)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        stalled.stop()
    assert result.outcome == "retry"
    logged = deliveries.get(delivery.id)
    assert logged is not None and logged.status == "pending" and logged.attempts == 1
    assert logged.last_error == "the attempt was stopped (SoftTimeLimitExceeded)"
    assert logged.next_attempt_at is not None
    # The lease was released: the next attempt can run.
    assert deliveries.lease(delivery.id, 30) is not None


def test_expired_deliveries_are_not_queued_again(
    client: httpx.Client, store: Repositories, deliveries: DeliveryLog, fast: Settings
) -> None:
    channel = webhook_channel(client, store, f"http://127.0.0.1:{free_port()}/nobody")
    delivery = queue_test(deliveries, NoQueue(), channel, fast)
    deliveries.redis.delete(keys.delivery(delivery.id))  # as its TTL would
    queue = RecordingQueue()
    later = utc_now() + timedelta(minutes=10)
    for _ in range(3):  # every sweep, as beat runs it
        redrive_overdue_at(deliveries, queue, later)
    assert delivery.id not in queue.queued
    assert deliveries.redis.zscore(keys.deliveries_due(), delivery.id) is None
    # And a task already queued for it drops it too.
    assert attempt_delivery(delivery.id, store.channels, deliveries, fast).outcome == "skipped"


def redrive_overdue_at(deliveries: DeliveryLog, queue: RecordingQueue, now: datetime) -> None:
    for delivery_id in deliveries.overdue(now, 10_000):
        queue.enqueue_delivery(delivery_id)


def test_test_events_are_rate_limited_and_kept_a_day(
    client: httpx.Client, store: Repositories, deliveries: DeliveryLog, fast: Settings
) -> None:
    channel = webhook_channel(client, store, f"http://127.0.0.1:{free_port()}/nobody")
    sent = [queue_test(deliveries, NoQueue(), channel, fast) for _ in range(6)]
    with pytest.raises(LimitExceededError) as refused:
        queue_test(deliveries, NoQueue(), channel, fast)
    assert 1 <= refused.value.retry_after_seconds <= 60
    assert "at most 6 test events a minute" in str(refused.value)
    for delivery in sent:
        assert 0 < deliveries.redis.ttl(keys.delivery(delivery.id)) <= 24 * 3600


def test_a_channels_log_keeps_its_newest_and_forgets_the_rest(
    client: httpx.Client, store: Repositories, settings: Settings
) -> None:
    kept = DeliveryLog(
        deliveries_client(settings), settings.model_copy(update={"webhook_deliveries_kept": 3})
    )
    channel = webhook_channel(client, store, f"http://127.0.0.1:{free_port()}/nobody")
    made = []
    for number, status in enumerate(["delivered", "pending", "failed", "delivered", "delivered"]):
        delivery = Delivery(
            id=f"dlv_{number}_{channel.id}", channel_id=channel.id, owner_id=channel.owner_id,
            event_id=f"evt_{number}", event="test", incident_id=None, status=status,
            created_at=utc_now() + timedelta(seconds=number), payload="{}",
        )  # fmt: skip
        assert kept.create(delivery)
        made.append(delivery.id)
    assert [d.id for d in kept.list_for_channel(channel.id, 10)] == made[:1:-1]
    # Off the list: the finished one's record is gone, the pending one's is kept (it is
    # still being retried, and expires on its own).
    assert kept.get(made[0]) is None
    assert kept.get(made[1]) is not None
    kept.redis.close()


def deliveries_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url or "")
