"""Fixtures of the tests that watch notifications: a real webhook receiver on 127.0.0.1, and
the incident sweep run as beat runs it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from common.notifications.delivery_log import DeliveryLog
from common.notifications.dispatch import SweepReport, notify_incidents
from common.queue import JobQueue, producer_app
from common.settings import Settings
from common.stores import Repositories
from tests.worker.webhook_receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def sweep(store: Repositories, settings: Settings) -> Iterator[Callable[[], SweepReport]]:
    """Run the incident sweep as beat's task does (its deliveries go to the real worker)."""
    client = redis.Redis.from_url(settings.redis_url or "")
    queue = JobQueue(producer_app(settings, settings.redis_url or ""))
    yield lambda: notify_incidents(store, DeliveryLog(client, settings), queue, settings)
    client.close()
