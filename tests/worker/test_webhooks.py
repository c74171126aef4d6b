"""Webhook notifications end to end: the API, a real worker, a real receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from common.notifications.delivery_log import DeliveryLog
from common.notifications.dispatch import SweepReport, notify_incidents
from common.queue import INCIDENT_SWEEP_TASK, JobQueue, producer_app
from common.settings import Settings
from common.stores import Repositories
from common.users.models import User
from tests.support import free_port
from tests.worker.incident_support import detect, make_outage
from tests.worker.support import WorkerProcess, wait_for
from tests.worker.webhook_receiver import Receiver, verify

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def channels(client: httpx.Client) -> Iterator[Callable[[str], dict[str, Any]]]:
    """Create channels; deleted afterwards, so the worker stops retrying to dead receivers."""
    created: list[str] = []

    def create(url: str, payload_format: str = "neonomaly") -> dict[str, Any]:
        body = {"type": "webhook", "url": url, "format": payload_format}
        response = client.post("/api/notification-channels", json=body)
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
        return response.json()  # type: ignore[no-any-return]

    yield create
    for channel_id in created:
        client.delete(f"/api/notification-channels/{channel_id}")


@pytest.fixture
def sweep(store: Repositories, settings: Settings) -> Iterator[Callable[[], SweepReport]]:
    """Run the incident sweep as beat's task does (its deliveries go to the real worker)."""
    client = redis.Redis.from_url(settings.redis_url or "")
    queue = JobQueue(producer_app(settings, settings.redis_url or ""))
    yield lambda: notify_incidents(store, DeliveryLog(client, settings), queue, settings)
    client.close()


def deliveries(client: httpx.Client, channel: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.get(channel["deliveries_url"])
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def delivered(
    client: httpx.Client, channel: dict[str, Any], count: int = 1
) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        log = deliveries(client, channel)
        return log if sum(d["status"] == "delivered" for d in log) >= count else None

    return wait_for(done, 60, f"{count} deliveries to {channel['url']}")  # type: ignore[no-any-return]


def assert_signed(channel: dict[str, Any], receiver: Receiver) -> None:
    for request in receiver.received:
        assert verify(channel["secret"], request.headers, request.body), (
            "signature does not verify with the channel's secret"
        )
        assert request.headers["Content-Type"] == "application/json"
        if "schema" in request.payload:  # Neonomaly's own format names the event in the body
            assert request.headers["X-Neonomaly-Event-Id"] == request.payload["event_id"]


def test_test_event_is_delivered_signed(
    client: httpx.Client, celery_worker: WorkerProcess, receiver: Receiver, channels: Any
) -> None:
    channel = channels(receiver.url)
    assert channel["secret"].startswith("whsec_")
    queued = client.post(f"/api/notification-channels/{channel['id']}/test")
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "pending"
    [log] = delivered(client, channel)
    assert log["attempts"] == 1 and log["last_status_code"] == 204 and log["last_error"] is None
    [request] = receiver.received
    assert request.path == "/hooks/neonomaly"
    assert request.payload["event"] == "test" and request.payload["event_id"] == log["event_id"]
    assert_signed(channel, receiver)
    tampered = request.body.replace(b"test", b"tset")
    assert not verify(channel["secret"], request.headers, tampered)
    assert not verify("whsec_another", request.headers, request.body)


def test_incident_opened_and_resolved_reach_the_receiver(
    client: httpx.Client,
    store: Repositories,
    celery_worker: WorkerProcess,
    receiver: Receiver,
    channels: Any,
    sweep: Callable[[], SweepReport],
    settings: Settings,
) -> None:
    channel = channels(receiver.url)
    outage = make_outage(client, store)
    detect(client, outage.latency)
    detect(client, outage.error_rate)
    assert sweep().deliveries >= 1
    delivered(client, channel)
    [opened] = receiver.processed.values()
    assert opened["schema"] == "neonomaly.webhook.v1" and opened["event"] == "incident.opened"
    incident = opened["incident"]
    assert incident["status"] == "open" and incident["url"] == f"/api/incidents/{incident['id']}"
    assert incident["probable_causes"][0]["metric"] == "payments/error_rate"
    assert "checkout depends on payments (directly)" in incident["summary"]
    sweep()  # nothing changed: nothing sent
    assert len(deliveries(client, channel)) == 1

    assert client.post(f"/api/incidents/{incident['id']}/resolve").status_code == 200
    # This time the sweep as beat sends it: the neonomaly.incident-sweep task, on the worker.
    producer_app(settings, settings.redis_url or "").send_task(INCIDENT_SWEEP_TASK)
    delivered(client, channel, count=2)
    events = [p["event"] for p in receiver.processed.values()]
    assert events == ["incident.opened", "incident.resolved"]
    assert len(receiver.received) == 2
    assert_signed(channel, receiver)


def test_slack_and_alertmanager_formats(
    client: httpx.Client,
    store: Repositories,
    celery_worker: WorkerProcess,
    channels: Any,
    sweep: Callable[[], SweepReport],
) -> None:
    slack, alertmanager = Receiver().start(), Receiver().start()
    try:
        slack_channel = channels(slack.url, "slack")
        alertmanager_channel = channels(alertmanager.url, "alertmanager")
        assert slack_channel["format"] == "slack"
        outage = make_outage(client, store)
        detect(client, outage.error_rate)
        detect(client, outage.latency)
        sweep()
        delivered(client, slack_channel)
        delivered(client, alertmanager_channel)
        [message] = slack.processed.values()
        headline, cause, _ = message["text"].split("\n")
        assert (
            headline == "*:rotating_light: Incident opened: payments/error_rate and 1 other metric*"
        )
        assert cause.startswith("Probable cause: payments/error_rate started 4 min before")
        [notification] = alertmanager.processed.values()
        assert notification["version"] == "4" and notification["status"] == "firing"
        first = notification["alerts"][0]
        assert first["labels"]["metric"] == "payments/error_rate" and first["labels"]["rank"] == "1"
        assert first["endsAt"] == "0001-01-01T00:00:00Z"
        assert_signed(slack_channel, slack)
        assert_signed(alertmanager_channel, alertmanager)
    finally:
        slack.stop()
        alertmanager.stop()


def test_receiver_down_then_back_gets_the_event_once(
    client: httpx.Client, celery_worker: WorkerProcess, channels: Any
) -> None:
    port = free_port()  # nothing listens there yet
    down = Receiver(port=port)
    channel = channels(down.url)
    client.post(f"/api/notification-channels/{channel['id']}/test")

    def retried() -> bool:
        [log] = deliveries(client, channel)
        return log["attempts"] >= 2 and log["status"] == "pending"

    wait_for(retried, 30, "two failed attempts")
    [log] = deliveries(client, channel)
    assert "ConnectError" in log["last_error"] and log["next_attempt_at"] is not None
    # Back up, but the first answer is lost (a 503 after processing): the sender must
    # send again, and a receiver that dedups on event_id processes it once.
    back = Receiver(port=port, fail_first=1, fail_status=503).start()
    try:
        [log] = delivered(client, channel)
        assert len(back.received) == 2 and len(back.processed) == 1
        assert {r.payload["event_id"] for r in back.received} == {log["event_id"]}
        assert log["attempts"] >= 4
    finally:
        back.stop()


def test_redirects_are_not_followed(
    client: httpx.Client, celery_worker: WorkerProcess, receiver: Receiver, channels: Any
) -> None:
    elsewhere = Receiver(redirect_to=receiver.url).start()
    try:
        channel = channels(elsewhere.url)
        client.post(f"/api/notification-channels/{channel['id']}/test")
        wait_for(lambda: deliveries(client, channel)[0]["attempts"] >= 2, 30, "two attempts")
        [log] = deliveries(client, channel)
        assert log["status"] == "pending" and log["last_status_code"] == 302
        assert "not followed" in log["last_error"]
        assert receiver.received == []
    finally:
        elsewhere.stop()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://10.0.0.5/hook", "private"),
        ("http://192.168.1.10/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.2:8080/hook", "loopback"),
        ("http://[::1]:8080/hook", "loopback"),
        ("http://[::ffff:10.1.2.3]/hook", "private"),
        ("http://100.64.0.1/hook", "non-public"),
        ("ftp://example.com/hook", "https://"),
        ("http:///no-host", "no host"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_internal_and_malformed_urls_are_refused(client: httpx.Client, url: str, says: str) -> None:
    response = client.post("/api/notification-channels", json={"type": "webhook", "url": url})
    assert response.status_code == 422, response.text
    assert says in response.json()["detail"]
    assert client.get("/api/notification-channels").json() == []


def test_channels_are_private_and_secrets_shown_once(
    client: httpx.Client,
    app_server: object,
    receiver: Receiver,
    make_user: Callable[..., tuple[User, str]],
) -> None:
    secret = "a-secret-of-my-own-choosing"
    created = client.post(
        "/api/notification-channels",
        json={"type": "webhook", "url": receiver.url, "secret": secret},
    )
    assert created.status_code == 201 and created.json()["secret"] == secret
    channel_id = created.json()["id"]
    [listed] = client.get("/api/notification-channels").json()
    assert listed["id"] == channel_id and "secret" not in listed
    assert "secret" not in client.get(f"/api/notification-channels/{channel_id}").json()
    short = client.post(
        "/api/notification-channels", json={"type": "webhook", "url": receiver.url, "secret": "x"}
    )
    assert short.status_code == 422
    slack = client.post("/api/notification-channels", json={"type": "slack", "url": receiver.url})
    assert slack.status_code == 422

    _, other_key = make_user("other")
    with httpx.Client(base_url=str(client.base_url), headers={"X-API-Key": other_key}) as other:
        for path in ("", "/deliveries"):
            assert other.get(f"/api/notification-channels/{channel_id}{path}").status_code == 404
        assert other.post(f"/api/notification-channels/{channel_id}/test").status_code == 404
        assert other.delete(f"/api/notification-channels/{channel_id}").status_code == 404
    assert client.delete(f"/api/notification-channels/{channel_id}").status_code == 204
    assert client.get(f"/api/notification-channels/{channel_id}").status_code == 404
    assert receiver.received == []
