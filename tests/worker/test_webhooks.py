"""Webhook notifications end to end: the API, a real worker, a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from common.notifications.dispatch import SweepReport
from common.queue import INCIDENT_SWEEP_TASK, producer_app
from common.scores import MAX_SCORE
from common.settings import Settings
from common.stores import Repositories
from common.users.models import User
from tests.support import free_port
from tests.worker.incident_support import POINTS, detect, make_outage, metric, service
from tests.worker.support import WorkerProcess, poll_job, wait_for
from tests.worker.webhook_receiver import Receiver, verify

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


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


def test_scores_off_a_zero_spread_reach_everyone_as_numbers(
    client: httpx.Client,
    store: Repositories,
    celery_worker: WorkerProcess,
    receiver: Receiver,
    channels: Any,
    sweep: Callable[[], SweepReport],
) -> None:
    # 1e-10 noise, then one reading of 1e300: 1e310 scale units out, infinity as a float.
    values = np.random.default_rng(1).normal(0, 1e-10, POINTS)
    values[-10] = 1e300
    channel = channels(receiver.url)
    metric_id = metric(client, store, service(client, "checkout"), "latency", values)
    submitted = client.post(
        "/api/metrics/anomaly-detection",
        json={"metric_id": metric_id, "method": "rolling", "robust": True, "sigma_threshold": 6},
    )
    job = poll_job(client, submitted.json()["job_id"])
    assert job["status"] == "succeeded", job
    page = client.get(job["result_url"], params={"offset": POINTS - 10, "limit": 1}).json()
    assert page["points"][0]["score"] == MAX_SCORE
    assert all(0 < event["peak_score"] <= MAX_SCORE for event in page["events"])
    [stored] = client.get(f"/api/metrics/{metric_id}/anomalies").json()["anomalies"]
    assert stored["score"] == MAX_SCORE and "inf" not in stored["summary"]

    sweep()
    delivered(client, channel)
    [request] = receiver.received

    def not_json(constant: str) -> None:
        raise AssertionError(f"{constant} in a webhook body is not JSON")

    payload = json.loads(request.body, parse_constant=not_json)
    [cause] = payload["incident"]["probable_causes"]
    assert cause["peak_score"] == MAX_SCORE
    assert f"peak score {MAX_SCORE:.1f} over" in cause["reasons"][-1]


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

    def retried() -> dict[str, Any] | None:
        [log] = deliveries(client, channel)
        failed = log["attempts"] >= 2 and "ConnectError" in (log["last_error"] or "")
        return log if failed and log["status"] == "pending" else None

    log = wait_for(retried, 30, "two failed attempts")
    assert log["next_attempt_at"] is not None
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


def test_test_events_are_rate_limited(
    client: httpx.Client, app_server: object, receiver: Receiver, channels: Any
) -> None:
    channel = channels(receiver.url)
    answers = [client.post(f"/api/notification-channels/{channel['id']}/test") for _ in range(7)]
    assert [answer.status_code for answer in answers] == [202] * 6 + [429]
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["detail"].startswith("at most 6 test events a minute: try again in ")


def test_channel_urls_stay_out_of_the_worker_log(
    client: httpx.Client, celery_worker: WorkerProcess, receiver: Receiver, channels: Any
) -> None:
    # Slack's webhook URLs are secrets: whoever has one can post to the channel.
    token = secrets.token_hex(12)
    channel = channels(f"http://127.0.0.1:{receiver.port}/services/T0/B0/{token}")
    nobody = channels(f"http://127.0.0.1:{free_port()}/services/T0/B1/{token}")
    for each in (channel, nobody):
        assert client.post(f"/api/notification-channels/{each['id']}/test").status_code == 202
    delivered(client, channel)
    assert receiver.received[0].path == f"/services/T0/B0/{token}"
    wait_for(
        lambda: "ConnectError" in (deliveries(client, nobody)[0]["last_error"] or ""),
        30,
        "a failed attempt",
    )
    assert token not in celery_worker.log()


def test_redirects_are_not_followed(
    client: httpx.Client, celery_worker: WorkerProcess, receiver: Receiver, channels: Any
) -> None:
    elsewhere = Receiver(redirect_to=receiver.url).start()
    try:
        channel = channels(elsewhere.url)
        client.post(f"/api/notification-channels/{channel['id']}/test")

        def redirected() -> dict[str, Any] | None:
            [log] = deliveries(client, channel)
            done = log["attempts"] >= 2 and "not followed" in (log["last_error"] or "")
            return log if done else None

        log = wait_for(redirected, 30, "two attempts")
        assert log["status"] == "pending" and log["last_status_code"] == 302
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
