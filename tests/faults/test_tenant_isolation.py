"""No tenant's work stalls another's (issue 21): each worst case one user can start runs
while another user appends readings one at a time, and that user's p99 append latency
stays under a second.

Its own embedded server, web app and worker (not the session's: the cases are heavy, and
a busy shared server would measure the other tests too). The graph engine is the
embedded FalkorDB, the one where tenants can stall each other: it runs one write at a
time for everyone. (On Neo4j a write locks only the nodes it touches: the batched deletes
and writes are checked there by the repository tests, tests/common.)

Adding a case: a `WorstCase` in CASES, with `prepare` (seed what it needs straight into
the store: fast, untimed) and `run` (the heavy operation as a user starts it, through the
API and the workers; it returns when the operation is over, and checks that it did what it
should). The other tenant's appends are measured while `run` runs.

What is measured is what the other tenant waits for, the service's answer, and nothing of
this test's own making: the appends are sent by a process of their own (tests/faults/
appender.py: the test's threads, a case's receivers and polling, cannot delay them), from a
warm connection (the first appends are not counted), and an append counts if it was in
flight at any moment of the case (one sent just before a stall suffers it too). The same
appends with nothing else running, just before the case, are printed beside (and in a
failure's message): on this 2-core machine shared by several test runs, load 20 and over
makes them slow on their own, which is what made this test flaky; the bound is not loosened
for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.anomalies.models import NewAnomaly
from common.embedded import EmbeddedServer
from common.epoch import from_epoch_ms, now_ms, to_epoch_ms
from common.graph.params import KeysetPage
from common.ids import new_id
from common.incidents.recording import record_anomalies
from common.metrics.models import MetricRef, NewReading
from common.settings import Settings
from common.stores import Repositories, connect_graph
from common.users.keys import new_api_key
from tests.support import ROOT, AppServer, settings_for, start_app, stop_app
from tests.worker.support import WorkerProcess, poll_job, start_worker, stop_worker, wait_for
from tests.worker.webhook_receiver import TricklingReceiver

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SIZE = 100_000  # readings (and anomalies) of the worst cases
P99_LIMIT_SECONDS = 1.0
MIN_APPENDS = 20  # the other tenant must really have been appending meanwhile
WARM_APPENDS = 5  # sent before a case starts: a connection open, the app warm
BASELINE_SECONDS = 3.0  # then appends with nothing else running, to compare with
OPERATION_TIMEOUT = 300.0
SEED_BATCH = 10_000
DEADLINE = 3  # WEBHOOK_TIMEOUT_SECONDS: one delivery attempt in all
TRICKLERS = 4  # trickling receivers: twice the deliveries' worker processes


@dataclass
class Stack:
    app: AppServer
    store: Repositories
    settings: Settings


@dataclass
class Tenant:
    """A user of the stack, with an HTTP client authenticated as it."""

    stack: Stack
    user_id: str
    key: str
    http: httpx.Client

    def metric(self, name: str) -> MetricRef:
        service = self.stack.store.services.create(self.user_id, name, None)
        metric = self.stack.store.metrics.create(self.user_id, service.id, name, None)
        return MetricRef(metric.id, name, service.id, self.user_id)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("isolation") / "data"
    server = EmbeddedServer(data_dir).start()
    settings = settings_for(server)
    store = connect_graph(settings)
    store.ensure_schema()
    env = {
        **os.environ,
        "GRAPH_URL": server.graph_url,
        "REDIS_URL": server.redis_url,
        "DATA_DIR": str(data_dir),
        "PYTHONPATH": str(ROOT),
        "LOG_LEVEL": "WARNING",
        # The trickling receivers listen on 127.0.0.1; each attempt ends in DEADLINE s.
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "WEBHOOK_TIMEOUT_SECONDS": str(DEADLINE),
        "WEBHOOK_RETRY_FIRST_SECONDS": "1",
        "WEBHOOK_RETRY_MAX_SECONDS": "1",
    }
    app = start_app(env)
    logs = tmp_path_factory.mktemp("isolation-workers")
    # As `neonomaly up` runs them: jobs and sweeps on one worker, deliveries on another.
    workers: list[WorkerProcess] = [
        start_worker(env, logs, queues=[settings.job_queue, settings.sweep_queue]),
        start_worker(env, logs, queues=[settings.delivery_queue], concurrency=2),
    ]
    try:
        yield Stack(app, store, settings)
    finally:
        for worker in workers:
            stop_worker(worker)
        stop_app(app)
        store.close()
        server.stop()


def tenant(stack: Stack, name: str) -> Iterator[Tenant]:
    key = new_api_key()
    # User names are unique, and the store lives for the module: one user per test.
    user = stack.store.users.create(f"{name}-{new_id()[:8]}", key.hashed)
    headers = {"X-API-Key": key.plain}
    with httpx.Client(base_url=stack.app.base_url, headers=headers, timeout=60) as http:
        yield Tenant(stack, user.id, key.plain, http)


@pytest.fixture
def heavy(stack: Stack) -> Iterator[Tenant]:
    """The tenant running a worst case."""
    yield from tenant(stack, "heavy")


@pytest.fixture
def neighbour(stack: Stack) -> Iterator[Tenant]:
    """The other tenant, appending meanwhile."""
    yield from tenant(stack, "neighbour")


# --- the worst cases ---------------------------------------------------------------------
def readings_of(tenant: Tenant, count: int) -> MetricRef:
    """A metric of `count` readings a second apart, ending now, stored straight in the store."""
    metric = tenant.metric("big")
    start = now_ms() - count * 1000
    for first in range(0, count, SEED_BATCH):
        tenant.stack.store.readings.append(
            metric.id,
            [
                NewReading(f"r{i}", start + i * 1000, float(i % 7))
                for i in range(first, min(count, first + SEED_BATCH))
            ],
        )
    return metric


def flagged_in_one_incident(tenant: Tenant) -> MetricRef:
    """SIZE readings, every one an anomaly of one event, all in one incident."""
    metric = readings_of(tenant, SIZE)
    series = tenant.stack.store.readings.read_window(metric.id, None, None)
    start, end = int(series.timestamps_ms[0]), int(series.timestamps_ms[-1])
    found = [
        NewAnomaly(
            metric.id, reading_id, timestamp_ms=int(at), value=1.0, expected=0.0, lower=0.0,
            upper=0.5, score=2.0, method="rolling", event_start_ms=start, event_end_ms=end,
        )
        for reading_id, at in zip(series.ids, series.timestamps_ms, strict=True)
    ]  # fmt: skip
    unlimited = tenant.stack.settings.model_copy(update={"job_max_anomalies": SIZE})
    recorded = record_anomalies(tenant.stack.store, metric, found, "seed", unlimited)
    assert [(c.opened, c.joined) for c in recorded.incidents] == [(True, SIZE)]
    return metric


def delete_metric(tenant: Tenant, metric: MetricRef) -> None:
    deleted = tenant.http.delete(f"/api/metrics/{metric.id}", timeout=OPERATION_TIMEOUT)
    assert deleted.status_code == 204, deleted.text
    store = tenant.stack.store
    assert len(store.readings.read_window(metric.id, None, None)) == 0
    assert store.anomalies.list_page(metric.id, KeysetPage(None, None, 1)) == []


def flag_everything(tenant: Tenant, metric: MetricRef) -> None:
    body = {"metric_id": metric.id, "method": "rolling", "sigma_threshold": 0.001}
    submitted = tenant.http.post("/api/metrics/anomaly-detection", json=body)
    assert submitted.status_code == 202, submitted.text
    job = poll_job(tenant.http, submitted.json()["job_id"], timeout=OPERATION_TIMEOUT)
    assert job["status"] == "succeeded", job
    summary = job["summary"]
    cap = tenant.stack.settings.job_max_anomalies
    assert summary["flagged"] > SIZE * 0.9
    assert summary["anomalies_stored"] == cap
    assert summary["anomalies_dropped"] == summary["flagged"] - cap


def trickling_receivers(tenant: Tenant) -> list[tuple[TricklingReceiver, dict[str, Any]]]:
    """Receivers that answer 200 and then a byte every 3 s, for ever: half of them in the
    body (the status is all a delivery needs), half in the headers (the answer never
    completes: each attempt runs to its deadline); a channel to each."""
    receivers = []
    for trickle in ["body", "headers"] * (TRICKLERS // 2):
        receiver = TricklingReceiver(trickle=trickle, interval=3).start()
        body = {"type": "webhook", "url": receiver.url}
        created = tenant.http.post("/api/notification-channels", json=body)
        assert created.status_code == 201, created.text
        receivers.append((receiver, created.json()))
    return receivers


def deliver_to_tricklers(
    tenant: Tenant, receivers: list[tuple[TricklingReceiver, dict[str, Any]]]
) -> None:
    """A delivery to each: delivered where the status came, and where it never comes, two
    attempts each cut at the deadline; no connection held open beyond it."""

    def done(receiver: TricklingReceiver, channel: dict[str, Any]) -> bool:
        [delivery] = tenant.http.get(channel["deliveries_url"]).json()
        if receiver.trickle == "body":
            return bool(delivery["status"] == "delivered")
        error = delivery["last_error"] or ""
        return bool(delivery["attempts"] >= 2 and error.startswith("no complete answer within"))

    try:
        for _, channel in receivers:
            sent = tenant.http.post(f"/api/notification-channels/{channel['id']}/test")
            assert sent.status_code == 202, sent.text
        for receiver, channel in receivers:
            wait_for(partial(done, receiver, channel), 120, f"{receiver.trickle} trickler", 0.5)
        for receiver, _ in receivers:
            ended = [c.closed - c.opened for c in receiver.connections if c.closed is not None]
            assert ended and max(ended) < DEADLINE + 2, receiver.connections
    finally:
        for receiver, channel in receivers:
            tenant.http.delete(f"/api/notification-channels/{channel['id']}")
            receiver.stop()


def chain_and_its_oldest(tenant: Tenant) -> tuple[MetricRef, int]:
    metric = readings_of(tenant, SIZE)
    [oldest] = tenant.http.get(f"/api/metrics/{metric.id}/readings?limit=1").json()["readings"]
    assert oldest["id"] == "r0"
    return metric, to_epoch_ms(datetime.fromisoformat(oldest["timestamp"]))


def splice_before_the_oldest(tenant: Tenant, prepared: tuple[MetricRef, int]) -> None:
    """A batch of readings before the oldest, the same batch again (all duplicates: they
    once cost as much), then readings one at a time, each before the one before."""
    metric, oldest_ms = prepared
    url = f"/api/metrics/{metric.id}/readings"

    def reading(name: str, seconds_before: int) -> dict[str, Any]:
        at = from_epoch_ms(oldest_ms - seconds_before * 1000).isoformat()
        return {"id": name, "timestamp": at, "value": 2.0}

    batch = {"readings": [reading(f"b{i}", 10 - i) for i in range(10)]}
    assert tenant.http.post(url, json=batch).json()["stored"] == 10
    assert tenant.http.post(url, json=batch).json()["duplicates"] == 10
    # Enough requests to last a few seconds on a quiet machine (30 took 0.8 s there: 19 of
    # the other tenant's appends meanwhile, under MIN_APPENDS).
    singles = 120
    for i in range(singles):
        stored = tenant.http.post(url, json=reading(f"s{i}", 11 + i))
        assert stored.status_code == 201 and stored.json()["stored"] == 1, stored.text
    first = tenant.http.get(url, params={"limit": singles + 11}).json()["readings"]
    expected = [f"s{i}" for i in reversed(range(singles))] + [f"b{i}" for i in range(10)] + ["r0"]
    assert [r["id"] for r in first] == expected


@dataclass(frozen=True)
class WorstCase:
    id: str
    prepare: Callable[[Tenant], Any]
    run: Callable[[Tenant, Any], None]


CASES = [
    # Review 1: 10k anomalies held the graph 10.8 s; 100k in one incident never finished.
    WorstCase("delete a metric of 100k readings and 100k anomalies in one incident",
              flagged_in_one_incident, delete_metric),
    # Review 2: 99,999 anomalies and one incident of as many members, 11.4 s of stalls.
    WorstCase("a job flagging every one of 100k readings",
              lambda tenant: readings_of(tenant, SIZE), flag_everything),
    # Review 3: answering 200, then a byte every few seconds, held every worker for minutes.
    WorstCase("deliveries to receivers that trickle their answer",
              trickling_receivers, deliver_to_tricklers),
    # Review 7: one reading before the oldest of 100k relinked the chain for 3.4-4.0 s.
    WorstCase("readings before the oldest of 100k", chain_and_its_oldest,
              splice_before_the_oldest),
]  # fmt: skip


# --- the other tenant --------------------------------------------------------------------
@dataclass
class Append:
    sent: float  # time.monotonic()
    seconds: float
    status: str


class Appender:
    """The other tenant appending, in a process of its own (tests/faults/appender.py)."""

    def __init__(self, tenant: Tenant, metric_id: str, output: Path):
        self.output = output
        with output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.appender", tenant.stack.app.base_url,
                 metric_id],
                cwd=ROOT, env={**os.environ, "NEONOMALY_KEY": tenant.key}, stdout=out,
            )  # fmt: skip

    def appends(self) -> list[Append]:
        lines = self.output.read_text().splitlines()
        return [Append(float(a), float(b), c) for a, b, c in (ln.split() for ln in lines)]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)  # the append in flight is finished first
        try:
            self.process.wait(OPERATION_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def during(appends: list[Append], start: float, end: float) -> list[float]:
    """Seconds of the appends in flight at any moment from `start` to `end`, sorted."""
    return sorted(a.seconds for a in appends if a.sent <= end and a.sent + a.seconds >= start)


def p99(seconds: list[float]) -> float:
    return seconds[min(len(seconds) - 1, round(0.99 * (len(seconds) - 1)))]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_another_tenants_appends_stay_fast(
    case: WorstCase, heavy: Tenant, neighbour: Tenant, tmp_path: Path
) -> None:
    prepared = case.prepare(heavy)
    appender = Appender(neighbour, neighbour.metric("small").id, tmp_path / "appends.txt")
    try:
        wait_for(lambda: len(appender.appends()) >= WARM_APPENDS, 60, "the appends to start")
        quiet = time.monotonic()
        time.sleep(BASELINE_SECONDS)
        started = time.monotonic()
        case.run(heavy, prepared)
        ended = time.monotonic()
    finally:
        appender.stop()
    appends = appender.appends()
    seconds = during(appends, started, ended)
    # What the machine alone gives the same appends: on a loaded machine (load 20 on 2
    # cores) it is already near the bound, and a failure says so.
    baseline = during([a for a in appends if a.sent + a.seconds < started], quiet, started)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    figures = (
        f"{case.id}: {ended - started:.1f} s; the other tenant's appends meanwhile: "
        f"{len(seconds)}, p99 {p99(seconds) * 1000:.0f} ms, max {seconds[-1] * 1000:.0f} ms; "
        f"before, with nothing running: {len(baseline)}, p99 {p99(baseline) * 1000:.0f} ms "
        f"(load {load})"
    )
    print("\n" + figures)
    assert [a.status for a in appends if a.status != "201"] == []
    assert len(seconds) >= MIN_APPENDS, figures
    assert p99(seconds) < P99_LIMIT_SECONDS, (figures, seconds[-10:])
