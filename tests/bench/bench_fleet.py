"""The fleet: N metrics, one reading a minute each, swept every (simulated) minute.

    .venv/bin/python tests/bench/bench_fleet.py [--metrics N] [--neo4j-metrics N (0: none)]
        [--minutes M] [--sample N] [--invalidate-at MINUTE [--rebuild-readings N]]
        [--cold-rounds R]
    (or `make bench`; the Neo4j part needs `make neo4j`, and is skipped without it)

Real processes: its own embedded server (FalkorDB, and Redis as broker and state store),
the web app (uvicorn, one process) and one Celery worker with a process per core (2 here),
as `neonomaly up` runs them. Time is simulated so that the run takes minutes, not hours:
readings are stamped minute by minute in the recent past, and each sweep is sent (the
`neonomaly.scan` task, as beat sends it) as soon as the minute's readings are in; every
figure is the real work of the real processes.

1. Cold start: 20 metrics with a week of 5-minute readings each, judged by 20 detection
   jobs of today's kind (auto, online: what a scan job was) submitted at once, and by one
   sweep with no state yet; wall time per metric (request to last verdict, as the client
   sees it) and the worker's and store's CPU, both on the same worker; --cold-rounds times,
   new metrics each round, jobs first and the sweep first in turn (the way run second
   costs more: the figure is the rounds' geometric mean), and where the sweep's batches
   spent their time (--metrics 0: only this; tests/bench/cold_start_paths.py: the two
   paths in one process, without Celery).
2. The fleet: N metrics (50,000 by default), each with 240 readings a minute apart (the
   default detector's minimum history), loaded through the store in bulk: a sample
   (--sample, 1,000) as raw readings (`append_many`), whose states a real cold sweep then
   builds (its cost per metric printed); every other metric a copy of a sample metric's
   history, stored as compaction leaves it (one chunk, the newest reading raw), with the
   state and mark that cold sweep left on that sample metric (same readings, same state;
   a cold sweep of 50,000 takes over an hour here). Then MINUTES minutes of one reading
   per metric through `POST /api/readings` (5,000 metrics a request, 8 threads), each
   followed by a sweep.
3. The same on a real Neo4j 5.26 with fewer metrics (--neo4j-metrics, 2,000).
With --invalidate-at K, the worker restarts before minute K with another SCAN_SENSITIVITY
(as after an upgrade or a settings change: every state is invalid), and the sweeps from
then on rebuild the fleet's states, at most SCAN_REBUILD_READINGS (--rebuild-readings)
readings' worth a sweep; each sweep's line says how many rebuilds it left waiting.

Printed per sweep and in all: metrics judged per minute, readings judged per second, scan
lag (reading stored → judged: the metric's scan_lag_seconds) p50/p99, CPU seconds per 1,000
metrics per sweep (worker, store, the store's snapshot and AOF rewrite forks, web), peak RSS
of web, worker and store, and where a batch's time goes per metric, and the rate the
minute's readings went in; the targets beside them. Per sweep also the store's CPU by
thread (FalkorDB's query threads, Redis's main thread), its forks and AOF (INFO
persistence), and the batches' time by phase (a statement each for the graph's reads and
writes). To see which statement costs the store what, statement by statement, run
tests/bench/sweep_queries.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from common import redis_keys as keys  # noqa: E402
from common.detection.adaptive import minimum_points  # noqa: E402
from common.errors import DependencyUnavailableError  # noqa: E402
from common.metrics.models import NewReading, ReadingSeries, ScanMark, WantedMetric  # noqa: E402
from common.metrics.repository import chunk_params  # noqa: E402
from common.queue import SCAN_TASK, producer_app  # noqa: E402
from common.scans.models import SweepTotals  # noqa: E402
from common.settings import Settings  # noqa: E402
from common.stores import RedisStores, redis_stores  # noqa: E402
from tests.bench.stack import CORES, Stack, embedded_stack, running_app  # noqa: E402
from tests.neo4j_server import Neo4jServer, Neo4jUnavailableError, start_neo4j  # noqa: E402
from tests.support import AppServer, settings_for  # noqa: E402
from tests.worker.support import WorkerProcess, start_worker, stop_worker  # noqa: E402

MINUTE_MS = 60_000
HISTORY = 240  # readings a minute apart: above the default detector's minimum
SERVICE_SIZE = 500  # metrics per service
LOAD_BATCH = 100  # metrics created, and their histories stored, a statement
# Distinct histories (--sample): metric n has the n % sample-th, so that the states a cold
# sweep builds for the first `sample` metrics are those of every metric.
SAMPLE = 1000
POSTERS = 8  # threads sending the minute's readings
COLD_METRICS = 20
COLD_READINGS = 7 * 288  # a week of 5-minute readings
TARGET_PER_MINUTE = 50_000
INTERVAL_S = 60
# What --invalidate-at changes SCAN_SENSITIVITY to (the default detector's is 3e-4).
INVALIDATING_SENSITIVITY = "0.0002"
TICK = os.sysconf("SC_CLK_TCK")
# The per-owner cap create_missing checks: none here.
NO_METRIC_CAP = 10**9


# --- processes ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """A process's CPU so far by thread name: for the embedded server, its main thread
    (`redis-server`: commands, replies, the AOF's writes), FalkorDB's query threads
    (`thread-pool-*`), Redis's background threads (`bio_aof`: the AOF's fsync)."""
    by_name: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return by_name


def children_cpu_seconds(pid: int) -> float:
    """CPU of a process's children: those it has waited for (the server's snapshot and AOF
    rewrite forks, once done: cutime + cstime) and those running now."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    seconds = (int(fields[13]) + int(fields[14])) / TICK
    try:
        running = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        running = []
    for child in running:
        with suppress(OSError):  # it ended meanwhile
            seconds += cpu_seconds(int(child))
    return seconds


def status_mb(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Processes:
    """The processes measured: web, the worker (its main process and pool), the store."""

    web: int
    worker: WorkerProcess
    store: int
    redis: int  # the embedded server: the store too on FalkorDB, Redis only beside Neo4j
    env: dict[str, str]  # the worker's environment
    logs: Path

    def restart_worker(self, extra_env: dict[str, str]) -> None:
        """A new worker with `extra_env` over its environment (an upgrade, a settings
        change): what an operator does."""
        stop_worker(self.worker)
        self.env = {**self.env, **extra_env}
        self.worker = start_worker(self.env, self.logs, concurrency=CORES or 2)

    def worker_pids(self) -> list[int]:
        return [self.worker.process.pid, *self.worker.child_pids()]

    def cpu(self) -> dict[str, float]:
        stores = {self.store, self.redis}
        return {
            "worker": sum(cpu_seconds(pid) for pid in self.worker_pids()),
            "store": sum(cpu_seconds(pid) for pid in stores),
            # The embedded server's snapshot and AOF rewrite forks: not in "store" (a
            # process's CPU leaves out its children's), yet CPU the machine spends on it.
            "store forks": children_cpu_seconds(self.redis),
            "web": cpu_seconds(self.web),
        }

    def peak_rss_mb(self) -> dict[str, float]:
        return {
            "web": status_mb(self.web, "VmHWM"),
            "worker (largest process)": max(status_mb(p, "VmHWM") for p in self.worker_pids()),
            "store": status_mb(self.store, "VmHWM"),
        }


@dataclass
class StoreSnapshot:
    """Where the embedded server's CPU went so far, and its persistence (INFO), taken
    around each sweep: what shows whether a snapshot or an AOF rewrite (a fork of the
    whole store) fell in it, and which of the server's threads did the work."""

    threads: dict[str, float]
    children: float
    minor_faults: int
    persistence: dict[str, Any]
    stats: dict[str, Any]

    @classmethod
    def take(cls, pid: int, client: redis.Redis) -> StoreSnapshot:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return cls(
            threads=thread_cpu_seconds(pid),
            children=children_cpu_seconds(pid),
            minor_faults=int(fields[7]),
            persistence=client.info("persistence"),
            stats=client.info("stats"),
        )

    def since(self, before: StoreSnapshot) -> str:
        """What happened between two snapshots, as a line of the report."""
        spent: dict[str, float] = {}
        for name, seconds in self.threads.items():
            group = "query threads" if name.startswith("thread-pool") else name
            spent[group] = spent.get(group, 0.0) + seconds - before.threads.get(name, 0.0)
        threads = ", ".join(
            f"{name} {seconds:.1f} s"
            for name, seconds in sorted(spent.items(), key=lambda i: -i[1])
            if seconds >= 0.05
        )
        p, was = self.persistence, before.persistence
        forks = self.stats["total_forks"] - before.stats["total_forks"]
        busy = [
            what
            for what, key in (
                ("snapshot", "rdb_bgsave_in_progress"),
                ("AOF rewrite", "aof_rewrite_in_progress"),
            )
            if p[key] or was[key]
        ]
        return (
            f"store threads: {threads or 'idle'}; forks {forks} (snapshots "
            f"{p['rdb_saves'] - was['rdb_saves']}, AOF rewrites "
            f"{p['aof_rewrites'] - was['aof_rewrites']}"
            f"{', running: ' + ' and '.join(busy) if busy else ''}; last fork "
            f"{self.stats['latest_fork_usec'] / 1000:.0f} ms), fork children's CPU "
            f"{self.children - before.children:.1f} s, minor page faults "
            f"{self.minor_faults - before.minor_faults:,}, AOF "
            f"{p['aof_current_size'] / 2**20:,.0f} MB (+"
            f"{(p['aof_current_size'] - was['aof_current_size']) / 2**20:,.0f}; base "
            f"{p['aof_base_size'] / 2**20:,.0f} MB)"
        )


# --- the fleet ------------------------------------------------------------------------------


def daily(steps: np.ndarray | int) -> np.ndarray:
    """A metric's usual value at a minute: a daily sine around 50."""
    return 50 + 10 * np.sin(2 * np.pi * np.asarray(steps) / 1440)


def history_values(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return daily(np.arange(count)) + rng.normal(0, 1, count)


@dataclass
class Fleet:
    sample: int  # metrics whose states a cold sweep builds; the others copy theirs
    services: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)


def add_metrics(stack: Stack, fleet: Fleet, count: int) -> list[str]:
    """`count` new metrics, up to SERVICE_SIZE a statement (`create_missing`, as ingest makes
    them), SERVICE_SIZE to a service; their ids."""
    made: list[str] = []
    while len(made) < count:
        if len(fleet.metrics) % SERVICE_SIZE == 0:
            name = f"fleet-{len(fleet.services)}"
            fleet.services.append(stack.store.services.create(stack.user_id, name, None).id)
        first = len(fleet.metrics)
        size = min(count - len(made), SERVICE_SIZE - first % SERVICE_SIZE)
        created = stack.store.metrics.create_missing(
            stack.user_id,
            [
                WantedMetric(fleet.services[-1], None, f"m{n}", {})
                for n in range(first, first + size)
            ],
            max_metrics=NO_METRIC_CAP,  # the cold start's metrics are the owner's too
        )
        ids = [m.id for m in created.metrics if m is not None]
        assert len(ids) == size, created
        fleet.metrics.extend(ids)
        made.extend(ids)
    return made


def history_readings(fleet: Fleet, number: int, first_ms: int) -> list[NewReading]:
    """Metric `number`'s history: the (number % fleet.sample)-th of that many."""
    values = history_values(HISTORY, number % fleet.sample)
    return [NewReading(f"h{i}", first_ms + i * MINUTE_MS, float(v)) for i, v in enumerate(values)]


def load_sample(stack: Stack, fleet: Fleet, first_ms: int) -> None:
    """The first `fleet.sample` metrics, their histories as raw readings (the chain, as
    ingest stores them: `append_many`, LOAD_BATCH metrics a statement)."""
    ids = add_metrics(stack, fleet, fleet.sample)
    for at in range(0, len(ids), LOAD_BATCH):
        stack.store.readings.append_many(
            {
                m: history_readings(fleet, at + k, first_ms)
                for k, m in enumerate(ids[at : at + LOAD_BATCH])
            }
        )


# The chunks compaction would write for metrics with no chunk yet (REPLACE_CHUNKS' node
# and boundary), many metrics a statement: REPLACE_CHUNKS does one metric at a time.
CREATE_CHUNKS = """
UNWIND $chunks AS k
MATCH (m:Metric {id: k.metric_id})
CREATE (:ReadingChunk {id: k.id, metric_id: k.metric_id, version: k.version,
                       first_timestamp: k.first, last_timestamp: k.last, readings: k.readings,
                       low: k.low, high: k.high, total: k.total, times: k.times, vals: k.vals,
                       ids: k.ids})
SET m.compacted_through = k.through
"""


def load_rest(stack: Stack, client: redis.Redis, fleet: Fleet, wanted: int, first_ms: int) -> None:
    """The other metrics, each a copy of a sample metric's history and its state: the
    history as compaction leaves it (the readings in a chunk, the newest raw), the state
    and the judged-through mark the cold sweep left on the sample metric it copies (same
    readings, so the same state the cold sweep would have built)."""
    sample_states: list[dict[Any, Any]] = []
    for metric_id in fleet.metrics[: fleet.sample]:
        state = client.hgetall(keys.scan_state(metric_id))
        assert state.get(b"state"), f"the cold sweep left no state for {metric_id}"
        sample_states.append(state)
    ttl_ms = int(client.pttl(keys.scan_state(fleet.metrics[0])))
    through = first_ms + (HISTORY - 1) * MINUTE_MS
    began = time.perf_counter()
    while len(fleet.metrics) < wanted:
        first = len(fleet.metrics)
        ids = add_metrics(stack, fleet, min(SERVICE_SIZE, wanted - first))
        newest = {}
        chunks = []
        for k, metric_id in enumerate(ids):
            readings = history_readings(fleet, first + k, first_ms)
            older = ReadingSeries(
                ids=[r.id for r in readings[:-1]],
                timestamps_ms=np.array([r.timestamp_ms for r in readings[:-1]], dtype=np.int64),
                values=np.array([r.value for r in readings[:-1]]),
            )
            [chunk] = chunk_params(older, None)
            chunks.append({**chunk, "metric_id": metric_id, "through": through})
            newest[metric_id] = readings[-1:]
        stack.store.executor.write(CREATE_CHUNKS, {"chunks": chunks})
        stack.store.readings.append_many(newest)
        with client.pipeline(transaction=False) as pipe:
            for k, metric_id in enumerate(ids):
                copied = sample_states[(first + k) % fleet.sample]
                pipe.hset(keys.scan_state(metric_id), mapping=copied)
                pipe.pexpire(keys.scan_state(metric_id), ttl_ms)
            pipe.execute()
        stack.store.metrics.save_scan_marks(
            [
                ScanMark(
                    metric_id=m,
                    after_ms=None,
                    through_ms=through,
                    judged=HISTORY,
                    raw=1,  # the newest; the others are in the chunk
                    compacted_through_ms=through,  # the boundary CREATE_CHUNKS set
                    late_seq=0,
                    appended_at_ms=None,
                    lag_ms=None,
                    note=None,
                )
                for m in ids
            ]
        )
        done = len(fleet.metrics)
        if done % 5000 == 0:
            rate = (done - fleet.sample) / (time.perf_counter() - began)
            print(f"#   {done:,} metrics stored ({rate:,.0f} metrics/s)", flush=True)


BATCH_SERIES = 5000  # series per POST /api/readings


def post_minute(base_url: str, key: str, metrics: Sequence[str], minute: int, at_ms: int) -> float:
    """One reading for each metric through the API, in batches of many metrics per request
    (`POST /api/readings`), or one request per metric where the app has no such endpoint;
    seconds it took."""
    stamp = datetime.fromtimestamp(at_ms / 1000, UTC).isoformat()
    clients: list[httpx.Client] = []
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=120)
            clients.append(local.http)
        http: httpx.Client = local.http
        return http

    # The series goes on as its history did (noise included): a sweep of a quiet fleet.
    usual = float(daily(HISTORY - 1 + minute))
    noise = dict(
        zip(metrics, np.random.default_rng(minute).normal(0, 1, len(metrics)), strict=True)
    )

    def reading(metric_id: str) -> dict[str, object]:
        value = usual + noise[metric_id]
        return {"value": float(value), "timestamp": stamp, "id": f"minute-{minute}"}

    def post_batch(first: int) -> None:
        series = [
            {"metric_id": m, "readings": [reading(m)]}
            for m in metrics[first : first + BATCH_SERIES]
        ]
        answer = client().post("/api/readings", json={"series": series})
        if answer.status_code != 201:
            raise RuntimeError(
                f"POST /api/readings answered {answer.status_code}: {answer.text[:500]}"
            )

    def post_one(metric_id: str) -> None:
        answer = client().post(f"/api/metrics/{metric_id}/readings", json=reading(metric_id))
        if answer.status_code != 201:
            raise RuntimeError(f"POST readings answered {answer.status_code}: {answer.text}")

    began = time.perf_counter()
    with ThreadPoolExecutor(POSTERS) as pool:
        if many_metric_endpoint(base_url, key):
            list(pool.map(post_batch, range(0, len(metrics), BATCH_SERIES)))
        else:
            list(pool.map(post_one, metrics))
    for http in clients:
        http.close()
    return time.perf_counter() - began


def many_metric_endpoint(base_url: str, key: str) -> bool:
    """Whether the app takes readings of many metrics in one request (POST /api/readings)."""
    with httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=30) as http:
        return http.post("/api/readings", json={"series": []}).status_code not in (404, 405)


def run_sweep(
    stack: Stack, stores: RedisStores, settings: Settings, poll_s: float = 0.2
) -> SweepTotals:
    """Send one sweep as beat does; its record once every batch has finished (asked every
    `poll_s`)."""
    producer = producer_app(settings, stack.server.redis_url)
    try:
        sweep_id = producer.send_task(SCAN_TASK).id
    finally:
        producer.close()
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        try:
            totals = stores.sweeps.totals(sweep_id)
        except DependencyUnavailableError as exc:
            # The 50,000-metric run died here once: the embedded server (1 GB, snapshotted
            # by a fork every few minutes, on a machine at load 17) did not answer the
            # poll in time. The sweep goes on meanwhile; so does the poll.
            print(f"# the sweep's record did not answer ({exc}); asking again", flush=True)
            time.sleep(1)
            continue
        if totals is not None and totals.finished_at is not None:
            return totals
        time.sleep(poll_s)
    raise RuntimeError(f"sweep {sweep_id} did not finish within an hour")


def lags_seconds(stack: Stack, services: Sequence[str]) -> list[float]:
    """Every metric's scan lag at its last judgement (reading stored → judged)."""
    lags = []
    for service_id in services:
        for metric in stack.store.metrics.list_in_service(stack.user_id, service_id):
            if metric.scan_lag_seconds is not None:
                lags.append(metric.scan_lag_seconds)
    return lags


def duration_s(totals: SweepTotals) -> float:
    assert totals.finished_at is not None
    return (totals.finished_at - totals.started_at).total_seconds()


def percentile(values: Sequence[float], share: float) -> float:
    return float(np.percentile(np.asarray(values), share * 100)) if values else float("nan")


# --- one engine -----------------------------------------------------------------------------


@contextmanager
def running_stack(neo4j: Neo4jServer | None) -> Iterator[tuple[Stack, AppServer, Processes]]:
    with (
        embedded_stack(neo4j, {"LOG_LEVEL": "WARNING"}) as stack,
        running_app(stack) as app,
        tempfile.TemporaryDirectory(prefix="neonomaly-bench-fleet-") as logs,
    ):
        env = dict(stack.env)
        worker = start_worker(env, Path(logs), concurrency=CORES or 2)
        redis_pid = stack.server.process.pid  # type: ignore[union-attr]
        store_pid = redis_pid if neo4j is None or neo4j.process is None else neo4j.process.pid
        processes = Processes(app.process.pid, worker, store_pid, redis_pid, env, Path(logs))
        try:
            yield stack, app, processes
        finally:
            stop_worker(processes.worker)


def cold_metrics(stack: Stack, service_id: str, round_number: int) -> list[str]:
    """COLD_METRICS new metrics, each with a week of 5-minute readings (the same histories
    every round: metric k has the k-th)."""
    first = int(time.time() * 1000) - COLD_READINGS * 300_000
    metrics = []
    for number in range(COLD_METRICS):
        metric = stack.store.metrics.create(
            stack.user_id, service_id, f"c{round_number}-{number}", None
        )
        values = history_values(COLD_READINGS, 10_000 + number)
        stack.store.readings.append(
            metric.id,
            [NewReading(f"c{i}", first + i * 300_000, float(v)) for i, v in enumerate(values)],
        )
        metrics.append(metric.id)
    return metrics


@dataclass(frozen=True)
class ColdRun:
    """One way of judging the cold metrics once: wall time from the request to the last
    verdict (as the client sees it, both ways), and the CPU each process spent meanwhile."""

    wall_s: float
    cpu: dict[str, float]
    totals: SweepTotals | None = None  # the sweep's record (a sweep only)


def jobs_run(app: AppServer, key: str, metrics: Sequence[str], processes: Processes) -> ColdRun:
    """One detection job of today's kind (auto, online: what a scan job was) per metric,
    submitted at once; done when the last one is."""
    cpu_before = processes.cpu()
    began = time.perf_counter()
    with httpx.Client(base_url=app.base_url, headers={"X-API-Key": key}, timeout=600) as http:
        jobs = [
            http.post(
                "/api/metrics/anomaly-detection",
                json={"metric_id": m, "method": "auto", "online": True},
            ).json()["job_id"]
            for m in metrics
        ]
        for job_id in jobs:
            while http.get(f"/api/jobs/{job_id}").json()["status"] not in ("succeeded", "failed"):
                time.sleep(0.05)
    wall_s = time.perf_counter() - began
    return ColdRun(wall_s, spent(cpu_before, processes.cpu()))


def sweep_run(
    stack: Stack, stores: RedisStores, settings: Settings, processes: Processes
) -> ColdRun:
    """One sweep with no state yet for the metrics: sent as beat sends it; done when its
    record says its last batch finished."""
    cpu_before = processes.cpu()
    began = time.perf_counter()
    totals = run_sweep(stack, stores, settings, poll_s=0.05)
    wall_s = time.perf_counter() - began
    return ColdRun(wall_s, spent(cpu_before, processes.cpu()), totals)


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in after}


def cold_start(
    stack: Stack,
    app: AppServer,
    stores: RedisStores,
    settings: Settings,
    processes: Processes,
    rounds: int,
) -> None:
    """Per-metric jobs of today's kind against one sweep with no state, on the same
    metrics, `rounds` times with new metrics each round, the order alternating (jobs first,
    then the sweep first, ...), so that a change in the machine's load falls on both."""
    service = stack.store.services.create(stack.user_id, "cold", None)
    n = COLD_METRICS
    walls: list[float] = []
    cpus: list[float] = []
    for number in range(1, rounds + 1):
        metrics = cold_metrics(stack, service.id, number)
        load = os.getloadavg()[0]
        if number % 2:
            jobs = jobs_run(app, stack.key, metrics, processes)
            sweep = sweep_run(stack, stores, settings, processes)
        else:
            sweep = sweep_run(stack, stores, settings, processes)
            jobs = jobs_run(app, stack.key, metrics, processes)
        totals = sweep.totals
        assert totals is not None
        jobs_cpu = jobs.cpu["worker"] + jobs.cpu["store"]
        sweep_cpu = sweep.cpu["worker"] + sweep.cpu["store"]
        walls.append(sweep.wall_s / jobs.wall_s)
        cpus.append(sweep_cpu / jobs_cpu)
        phases = totals.phase_seconds
        print(
            f"cold start, round {number} ({'jobs' if number % 2 else 'sweep'} first, load "
            f"{load:.1f}), {n} metrics with a week of 5-minute readings ({COLD_READINGS:,} "
            f"each): detection jobs (today's per-metric scan) {jobs.wall_s / n * 1000:.0f} ms "
            f"a metric, CPU worker {jobs.cpu['worker'] / n * 1000:.0f} ms + store "
            f"{jobs.cpu['store'] / n * 1000:.0f} ms (+ web {jobs.cpu['web'] / n * 1000:.0f} "
            f"ms); one sweep, no state yet {sweep.wall_s / n * 1000:.0f} ms a metric, CPU "
            f"worker {sweep.cpu['worker'] / n * 1000:.0f} ms + store "
            f"{sweep.cpu['store'] / n * 1000:.0f} ms ({totals.readings_judged:,} readings "
            f"judged); sweep / jobs: wall {walls[-1]:.2f}, CPU {cpus[-1]:.2f}",
            flush=True,
        )
        print(
            "#   the cold sweep's batches per metric: "
            + phases_per_metric(phases, n)
            + f"; the sweep's record: {duration_s(totals):.2f} s from its start to its "
            f"last batch's end",
            flush=True,
        )
    # Whichever way runs second on the round's metrics costs more, wall and CPU (they were
    # judged once already: BENCHMARKS.md "Fleet sweeps"), so the rounds alternate and the
    # figure is their geometric mean, where that cancels; the medians of each order beside.
    wall, cpu = geometric_mean(walls), geometric_mean(cpus)
    print(
        f"cold start, sweep / jobs over {rounds} round(s): wall {wall:.2f} (geometric mean; "
        f"the sweep second {median_of(walls[0::2])}, first {median_of(walls[1::2])}), "
        f"worker + store CPU {cpu:.2f} (second {median_of(cpus[0::2])}, first "
        f"{median_of(cpus[1::2])}) [target: the sweep no slower] "
        f"{'OK' if wall <= 1 else 'SLOWER'}",
        flush=True,
    )


def geometric_mean(ratios: Sequence[float]) -> float:
    return float(np.exp(np.mean(np.log(ratios))))


def median_of(ratios: Sequence[float]) -> str:
    return f"{statistics.median(ratios):.2f}" if ratios else "-"


@dataclass
class SweepFigures:
    totals: SweepTotals
    seconds: float
    cpu: dict[str, float]
    lags: list[float]
    post_seconds: float


@dataclass(frozen=True)
class Invalidation:
    """Before minute `at` (0: never), the worker restarts with another SCAN_SENSITIVITY:
    every metric's state is then invalid, as after an upgrade; and with `rebuild_readings`
    as its SCAN_REBUILD_READINGS (None: the default; the cold sweep before ran with the
    default, which it fits)."""

    at: int = 0
    rebuild_readings: int | None = None

    def apply(self, processes: Processes, minute: int) -> None:
        changed = {"SCAN_SENSITIVITY": INVALIDATING_SENSITIVITY}
        if self.rebuild_readings is not None:
            changed["SCAN_REBUILD_READINGS"] = str(self.rebuild_readings)
        processes.restart_worker(changed)
        print(
            f"# minute {minute}: the worker restarted with SCAN_SENSITIVITY="
            f"{INVALIDATING_SENSITIVITY} (SCAN_REBUILD_READINGS="
            f"{processes.env.get('SCAN_REBUILD_READINGS', 'default')}): every "
            f"metric's state, built with the default, is invalid",
            flush=True,
        )


def load_fleet(
    stack: Stack,
    client: redis.Redis,
    stores: RedisStores,
    settings: Settings,
    wanted: int,
    minutes: int,
    sample: int,
) -> tuple[Fleet, int]:
    """The fleet stored (the sample raw, swept cold; the rest copies of it: module doc, 2);
    it, and its first reading's time."""
    now_ms = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
    first_ms = now_ms - (HISTORY + minutes + 2) * MINUTE_MS
    fleet = Fleet(sample)
    store_before = client.info("memory")["used_memory"]
    began = time.perf_counter()
    load_sample(stack, fleet, first_ms)
    sample_s = time.perf_counter() - began
    sample_bytes = client.info("memory")["used_memory"] - store_before
    cold = run_sweep(stack, stores, settings)
    per_metric_s = duration_s(cold) / max(cold.metrics_judged, 1)
    print(
        f"# sample: {sample:,} metrics x {HISTORY} readings stored raw in "
        f"{sample_s:.0f} s ({sample * HISTORY / sample_s:,.0f} readings/s); "
        f"the graph's memory {sample_bytes / sample / 1024:.0f} KB per metric, "
        f"{sample_bytes / sample / HISTORY * 1440 / 1024:,.0f} KB per metric-day "
        f"of raw 1-minute readings",
        flush=True,
    )
    print(
        f"cold sweep of the sample (no state yet, every state built from {HISTORY} "
        f"readings): {cold.metrics_judged:,} metrics, {cold.readings_judged:,} readings in "
        f"{duration_s(cold):.1f} s: {per_metric_s * 1000:.1f} ms a metric "
        f"({cold.readings_judged / duration_s(cold):,.0f} readings/s); at that rate "
        f"{wanted:,} metrics would take {per_metric_s * wanted / 60:.0f} min",
        flush=True,
    )
    before_rest = client.info("memory")["used_memory"]
    began = time.perf_counter()
    load_rest(stack, client, fleet, wanted, first_ms)
    n = len(fleet.metrics)
    rest = n - sample
    rest_bytes = client.info("memory")["used_memory"] - before_rest
    state_bytes = client.memory_usage(keys.scan_state(fleet.metrics[-1])) or 0
    print(
        f"# the other {rest:,} metrics: each a sample metric's history, stored as compaction "
        f"leaves it (a chunk, the newest reading raw), and the state and mark the cold "
        f"sweep left on that metric, in {time.perf_counter() - began:.0f} s; the embedded "
        f"server's memory {rest_bytes / max(rest, 1) / 1024:.1f} KB per metric: its "
        f"scan state (Redis) {state_bytes / 1024:.1f} KB, the graph (metric node, chunk of "
        f"{HISTORY - 1} readings, newest reading) "
        f"{(rest_bytes / max(rest, 1) - state_bytes) / 1024:.1f} KB",
        flush=True,
    )
    return fleet, first_ms


def run_engine(
    engine: str,
    neo4j: Neo4jServer | None,
    wanted: int,
    minutes: int,
    sample: int,
    invalidation: Invalidation = Invalidation(),
    cold_rounds: int = 1,
) -> None:
    print(f"== {engine}: {wanted:,} metrics wanted, {minutes} minutes, {CORES} cores", flush=True)
    with running_stack(neo4j) as (stack, app, processes):
        settings = settings_for(stack.server, neo4j)
        client = redis.Redis.from_url(stack.server.redis_url)
        stores = redis_stores(client, settings)
        cold_start(stack, app, stores, settings, processes, cold_rounds)
        if not wanted:
            client.close()
            return

        fleet, first_ms = load_fleet(stack, client, stores, settings, wanted, minutes, sample)
        n = len(fleet.metrics)
        batched = many_metric_endpoint(app.base_url, stack.key)
        print(
            "# readings sent "
            + (
                f"by POST /api/readings, {BATCH_SERIES:,} metrics a request"
                if batched
                else "one request per metric (this app has no POST /api/readings)"
            ),
            flush=True,
        )
        figures: list[SweepFigures] = []
        for minute in range(1, minutes + 1):
            if minute == invalidation.at:
                invalidation.apply(processes, minute)
            at_ms = first_ms + (HISTORY - 1 + minute) * MINUTE_MS
            post_s = post_minute(app.base_url, stack.key, fleet.metrics, minute, at_ms)
            cpu_before = processes.cpu()
            probe_before = StoreSnapshot.take(processes.redis, client)
            totals = run_sweep(stack, stores, settings)
            cpu_after = processes.cpu()
            probe_after = StoreSnapshot.take(processes.redis, client)
            cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
            lags = lags_seconds(stack, fleet.services)
            seconds = duration_s(totals)
            figures.append(SweepFigures(totals, seconds, cpu, lags, post_s))
            per_k = 1000 / max(totals.metrics_judged, 1)
            print(
                f"minute {minute:2}: {n:,} readings posted in {post_s:.1f} s "
                f"({n / post_s:,.0f} readings/s); sweep "
                f"{totals.metrics_judged:,} metrics in {seconds:.1f} s "
                f"({totals.metrics_judged / seconds * 60:,.0f} a minute, "
                f"{totals.readings_judged / seconds:,.0f} readings/s, "
                f"{totals.anomalies:,} anomalies, {totals.rebuilds_waiting:,} rebuilds "
                f"left waiting), lag p50 "
                f"{percentile(lags, 0.5):.1f} s p99 {percentile(lags, 0.99):.1f} s, CPU per "
                f"1,000 metrics: worker {cpu['worker'] * per_k:.2f} s, store "
                f"{cpu['store'] * per_k:.2f} s, its forks {cpu['store forks'] * per_k:.2f} s",
                flush=True,
            )
            print(f"#   {probe_after.since(probe_before)}", flush=True)
            phases = totals.phase_seconds
            print(
                "#   the batches' time per metric: "
                + phases_per_metric(phases, totals.metrics_judged, micro=True),
                flush=True,
            )
        report(engine, n, figures, processes)
        client.close()


def report(engine: str, n: int, figures: list[SweepFigures], processes: Processes) -> None:
    rates = [f.totals.metrics_judged / f.seconds * 60 for f in figures]
    readings = [f.totals.readings_judged / f.seconds for f in figures]
    lags = [lag for f in figures for lag in f.lags]
    judged = sum(f.totals.metrics_judged for f in figures)
    per_k = {
        name: sum(f.cpu[name] for f in figures) / judged * 1000
        for name in ("worker", "store", "store forks")
    }
    print(f"-- {engine}, {n:,} metrics, {len(figures)} sweeps of one new reading each:")
    print(
        f"metrics judged per minute: median {statistics.median(rates):,.0f} "
        f"(min {min(rates):,.0f}) [target >= {TARGET_PER_MINUTE:,}] "
        f"{'OK' if statistics.median(rates) >= TARGET_PER_MINUTE else 'BELOW'}"
    )
    print(f"readings judged per second: median {statistics.median(readings):,.0f}")
    ingest = [n / f.post_seconds for f in figures]
    print(
        f"ingest of the minute's {n:,} readings through POST /api/readings "
        f"({BATCH_SERIES:,} metrics a request, {POSTERS} threads): median "
        f"{statistics.median(ingest):,.0f} readings/s (min {min(ingest):,.0f}) "
        f"[the minute's readings in {statistics.median(f.post_seconds for f in figures):.1f} s "
        f"of the {INTERVAL_S} s interval]"
    )
    p99 = percentile(lags, 0.99)
    print(
        f"scan lag (stored -> judged): p50 {percentile(lags, 0.5):.1f} s, p99 {p99:.1f} s "
        f"[target p99 <= interval + 10 s = {INTERVAL_S + 10} s] "
        f"{'OK' if p99 <= INTERVAL_S + 10 else 'ABOVE'}"
    )
    print(
        f"CPU seconds per 1,000 metrics per sweep: worker {per_k['worker']:.2f}, "
        f"store {per_k['store']:.2f}, the store's forks (snapshots, AOF rewrites) "
        f"{per_k['store forks']:.2f} (web, ingesting the readings: "
        f"{sum(f.cpu['web'] for f in figures) / judged * 1000:.2f})"
    )
    per_core = 60_000 / (per_k["worker"] + per_k["store"] + per_k["store forks"])
    print(
        f"so one core judges about {per_core:,.0f} metrics a minute (worker and store CPU, "
        f"the store's forks included); "
        f"{CORES} cores about {per_core * (CORES or 1):,.0f} "
        f"(load average during the run: {os.getloadavg()[1]:.1f} on {CORES} cores)"
    )
    peaks = processes.peak_rss_mb()
    print(
        "peak RSS: "
        + ", ".join(f"{name} {mb:,.0f} MB" for name, mb in peaks.items())
        + " [target: worker bounded by its batch, not the fleet]"
    )
    phases: dict[str, float] = {}
    for f in figures:
        for name, seconds in f.totals.phase_seconds.items():
            phases[name] = phases.get(name, 0.0) + seconds
    spent = sum(phases.values())
    print(
        "a batch's time per metric: "
        + ", ".join(
            f"{name} {seconds / judged * 1e6:.0f} us ({seconds / spent:.0%})"
            for name, seconds in sorted(phases.items(), key=lambda item: -item[1])
        )
        + f"; in all {spent / judged * 1e6:.0f} us a metric over the batches' processes",
        flush=True,
    )


def phases_per_metric(phases: dict[str, float], metrics: int, micro: bool = False) -> str:
    """A batch's phases (seconds in all) per metric, the largest first, in ms (or us)."""
    scale, unit, digits = (1e6, "us", 0) if micro else (1e3, "ms", 1)
    return ", ".join(
        f"{name} {seconds / max(metrics, 1) * scale:.{digits}f} {unit}"
        for name, seconds in sorted(phases.items(), key=lambda item: -item[1])
        if seconds
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--metrics", type=int, default=50_000, help="0: the cold start only (FalkorDB)"
    )
    parser.add_argument("--neo4j-metrics", type=int, default=2_000, help="0: no Neo4j part")
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument(
        "--sample", type=int, default=SAMPLE, help="metrics stored raw and swept cold"
    )
    parser.add_argument(
        "--invalidate-at",
        type=int,
        default=0,
        help="restart the worker with another SCAN_SENSITIVITY before this minute (0: never)",
    )
    parser.add_argument(
        "--rebuild-readings", type=int, default=None, help="the workers' SCAN_REBUILD_READINGS"
    )
    parser.add_argument(
        "--cold-rounds",
        type=int,
        default=1,
        help="rounds of the cold start (jobs against a cold sweep, the order alternating)",
    )
    args = parser.parse_args()
    invalidation = Invalidation(args.invalidate_at, args.rebuild_readings)
    print(f"# the default detector judges from reading number {minimum_points()} on", flush=True)
    run_engine(
        "falkordb",
        None,
        args.metrics,
        args.minutes,
        min(args.sample, args.metrics),
        invalidation,
        args.cold_rounds,
    )
    if args.neo4j_metrics == 0:
        return 0
    with tempfile.TemporaryDirectory(prefix="neonomaly-bench-neo4j-") as tmp:
        try:
            neo4j = start_neo4j(Path(tmp))
        except Neo4jUnavailableError as exc:
            print(f"# neo4j not measured: {exc}")
            return 0
        try:
            run_engine(
                "neo4j",
                neo4j,
                args.neo4j_metrics,
                args.minutes,
                min(args.sample, args.neo4j_metrics),
                invalidation,
                args.cold_rounds,
            )
        finally:
            neo4j.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
