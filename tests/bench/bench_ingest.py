"""Ingest speed: readings through the HTTP API against a bare UNWIND CREATE of the same
readings on the same store, side by side in one run, on the embedded FalkorDB and on Neo4j;
and what a late reading costs on a long chain.

    .venv/bin/python tests/bench/bench_ingest.py    (or `make bench`; Neo4j needs `make neo4j`)

Each engine gets its own stack (tests/bench/stack.py) and the app under uvicorn. Shapes,
each in time order into metrics that exist:
- one-metric: POST /api/metrics/{id}/readings, batches of 5,000 (the seed's endpoint);
- fleet: POST /api/readings, 1,000 metrics x 1 reading per request, by metric id (what an
  agent sending a fleet's minute looks like), and the same by service and metric name (what
  the Prometheus and OTLP receivers send);
- bulk: POST /api/readings, 10 metrics x 1,000 readings per request.
The bare statement creates the same rows (ids, metric ids, timestamps, values, as columns:
its fastest form) in statements of the request's size, with no chain, no lookups, no checks.
Shapes and their bare twins take turns within each run, so that both see the same machine
(the figures of a shared machine move by 2x between minutes; the ratios hold). Each figure
is a median over RUNS; each shape's readings are deleted after its run.

Then, on FalkorDB, the fleet shape's statement alone beside FLOOR_APPEND (the least a tail
append does in this data model) and the bare create: what the checks cost, and what the
model costs whatever the statement does. Then, on a chain of 100,000 readings: the time of
one append before the oldest reading, and of one between two readings in the middle (the
statement relinked the whole tail before: 3.4-4.0 s).

    .venv/bin/python tests/bench/bench_ingest.py --against main

measures only a change to the append statement: APPEND_READINGS as commit `main` has it
beside this checkout's, through `append_many` on one embedded store, in turn, each shape's
median (what BENCHMARKS.md's before/after figures for the statement come from);
`--against main --neo4j` does the same on the test Neo4j.

    .venv/bin/python tests/bench/bench_ingest.py --api-against main

measures a change anywhere on the way (HTTP, validation, the service, the statement): the
app of commit `main` (exported to a temporary directory) and this checkout's, both under
uvicorn on one embedded store, each FalkorDB shape sent to each in turn with the bare
create beside them, RUNS_AGAINST rounds; prints each one's ratio to the bare create and
this checkout's time over main's. `--api-against main --neo4j`: the Neo4j shapes, on the
test Neo4j (both apps in this checkout's virtualenv: a driver package is not compared).

    .venv/bin/python tests/bench/bench_ingest.py --stamp [--neo4j]

the fleet shape through `append_many` with APPEND_READINGS as it is and without its
`last_append_at` stamp (which the sweeps read), in turn, the bare create beside them.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from common.metrics import queries  # noqa: E402
from common.metrics.models import NewReading  # noqa: E402
from tests.bench.stack import CORES, T0_MS, Stack, embedded_stack, running_app  # noqa: E402
from tests.neo4j_server import Neo4jServer, Neo4jUnavailableError, start_neo4j  # noqa: E402
from tests.support import start_app, stop_app  # noqa: E402

RATIO_TARGET = 0.45
NEO4J_TARGET = 10_000  # readings/s of batch ingest
LATE_CHAIN = 100_000
LATE_TRIES = 5
SINGLE_POSTS = 500

# The bare ceiling: the same rows created, nothing else.
BARE_CREATE = """
UNWIND range(0, size($ids) - 1) AS i
CREATE (:MetricReading {id: $ids[i], metric_id: $metric_ids[i], timestamp: $timestamps[i],
                        value: $values[i]})
"""
# The least a tail append can do in this data model, one reading per metric: find the
# metric, create the reading, move LATEST_READING, link NEXT. No duplicate check, no stamp
# for scans, no lock: not correct, only the floor the real statement is measured against.
FLOOR_APPEND = """
UNWIND range(0, size($metric_ids) - 1) AS k
WITH k, $metric_ids[k] AS metric_id
MATCH (m:Metric {id: metric_id})
OPTIONAL MATCH (m)-[old_latest:LATEST_READING]->(latest:MetricReading)
CREATE (n:MetricReading {id: $ids[k], metric_id: metric_id, timestamp: $timestamps[k],
                         value: $values[k]})
DELETE old_latest
CREATE (m)-[:LATEST_READING]->(n)
FOREACH (a IN CASE WHEN latest IS NULL THEN [] ELSE [latest] END | CREATE (a)-[:NEXT]->(n))
"""
FLOOR_METRICS = 1_000
FLOOR_ROUNDS = 9
BARE_DELETE = """
MATCH (r:MetricReading {metric_id: $metric_id})
WITH r LIMIT 20000
DETACH DELETE r
RETURN count(*) AS deleted
"""


@dataclass(frozen=True)
class Shape:
    name: str
    metrics: int
    per_metric: int  # readings per metric per request
    requests: int
    path: str  # "metric" (the one-metric endpoint), "ids" or "names" (POST /api/readings)

    @property
    def per_request(self) -> int:
        return self.metrics * self.per_metric

    @property
    def readings(self) -> int:
        return self.per_request * self.requests


FALKORDB_SHAPES = (
    Shape("one-metric, 5,000 per request", 1, 5_000, 8, "metric"),
    Shape("fleet, 1,000 metrics x 1, by id", 1_000, 1, 40, "ids"),
    Shape("fleet, 1,000 metrics x 1, by name", 1_000, 1, 40, "names"),
    Shape("bulk, 10 metrics x 1,000", 10, 1_000, 4, "ids"),
)
# Four requests a run where there was one or two: Neo4j plans the append statement again
# when its statistics have moved (after the last shape's clean-up, say), which took
# 0.7-3.7 s under load, and a run of one request measured mostly that.
NEO4J_SHAPES = (
    Shape("one-metric, 5,000 per request", 1, 5_000, 4, "metric"),
    Shape("fleet, 1,000 metrics x 1, by id", 1_000, 1, 10, "ids"),
    Shape("bulk, 10 metrics x 1,000", 10, 1_000, 4, "ids"),
)


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reading(metric: int, request: int, k: int, shape: Shape) -> dict[str, Any]:
    """Reading k of a metric in a request: a second apart, in time order across requests."""
    n = request * shape.per_metric + k
    return {"id": f"m{metric}-{n}", "timestamp": T0_MS + n * 1000, "value": (n % 97) * 0.5}


class Run:
    """One shape's metrics on one stack, the requests' bodies made before the clock starts."""

    def __init__(self, stack: Stack, shape: Shape, tag: str):
        self.stack = stack
        self.shape = shape
        service = stack.store.services.create(stack.user_id, f"{tag}-svc", None)
        self.service_id = service.id
        self.metric_ids = [
            stack.store.metrics.create(stack.user_id, service.id, f"{tag}-{m}", None).id
            for m in range(shape.metrics)
        ]
        self.metric_names = [f"{tag}-{m}" for m in range(shape.metrics)]
        self.bare_metric_ids = [f"bare-{metric_id}" for metric_id in self.metric_ids]

    def bodies(self) -> list[tuple[str, bytes]]:
        shape = self.shape
        out = []
        for request in range(shape.requests):
            if shape.path == "metric":
                rows = [
                    {**r, "timestamp": iso(int(r["timestamp"]))}
                    for r in (reading(0, request, k, shape) for k in range(shape.per_metric))
                ]
                body = {"readings": rows}
                out.append((f"/api/metrics/{self.metric_ids[0]}/readings", body))
                continue
            series = []
            for m in range(shape.metrics):
                rows = [
                    {**r, "timestamp": iso(int(r["timestamp"]))}
                    for r in (reading(m, request, k, shape) for k in range(shape.per_metric))
                ]
                named: dict[str, Any] = (
                    {"metric_id": self.metric_ids[m]}
                    if shape.path == "ids"
                    else {"service_id": self.service_id, "metric_name": self.metric_names[m]}
                )
                series.append({**named, "readings": rows})
            out.append(("/api/readings", {"series": series}))
        return [(path, json.dumps(body).encode()) for path, body in out]

    def bare_params(self) -> list[dict[str, Any]]:
        shape = self.shape
        statements = []
        for request in range(shape.requests):
            rows = [
                (self.bare_metric_ids[m], reading(m, request, k, shape))
                for m in range(shape.metrics)
                for k in range(shape.per_metric)
            ]
            statements.append(
                {
                    "ids": [r["id"] for _, r in rows],
                    "metric_ids": [metric_id for metric_id, _ in rows],
                    "timestamps": [r["timestamp"] for _, r in rows],
                    "values": [r["value"] for _, r in rows],
                }
            )
        return statements

    def clean_up(self) -> None:
        self.stack.store.services.delete(self.stack.user_id, self.service_id)
        for metric_id in self.bare_metric_ids:
            while self.stack.store.executor.write(BARE_DELETE, {"metric_id": metric_id})[0][
                "deleted"
            ]:
                pass


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def post_all(http: httpx.Client, bodies: list[tuple[str, bytes]]) -> None:
    for path, body in bodies:
        response = http.post(path, content=body)
        if response.status_code != 201:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")


def bare_all(stack: Stack, statements: list[dict[str, Any]]) -> None:
    for params in statements:
        stack.store.executor.write(BARE_CREATE, params)


def run_shape(stack: Stack, http: httpx.Client, shape: Shape, tag: str) -> tuple[float, float]:
    """(API readings/s, bare readings/s) for one run of the shape, one after the other."""
    run = Run(stack, shape, tag)
    bodies = run.bodies()
    bare = run.bare_params()
    try:
        api = shape.readings / timed(partial(post_all, http, bodies))
        ceiling = shape.readings / timed(partial(bare_all, stack, bare))
    finally:
        run.clean_up()
    return api, ceiling


def report(name: str, value: float, unit: str, extra: str = "") -> None:
    print(f"{name}: {value:,.1f} {unit} (cores={CORES}{', ' + extra if extra else ''})", flush=True)


def measure_shapes(engine: str, stack: Stack, base_url: str, shapes: tuple[Shape, ...]) -> None:
    runs = 3 if engine == "falkordb" else 2
    headers = {"X-API-Key": stack.key, "Content-Type": "application/json"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=300) as http:
        run_shape(stack, http, Shape("warm-up", 10, 100, 2, "ids"), "warm")
        figures: dict[Shape, list[tuple[float, float]]] = {shape: [] for shape in shapes}
        for n in range(runs):
            for shape in shapes:
                figures[shape].append(run_shape(stack, http, shape, f"{engine}{n}"))
    for shape, pairs in figures.items():
        api = statistics.median(a for a, _ in pairs)
        bare = statistics.median(b for _, b in pairs)
        ratio = statistics.median(a / b for a, b in pairs)
        label = f"{engine}: {shape.name}"
        target = f"target >= {NEO4J_TARGET:,}" if engine == "neo4j" else ""
        report(f"{label}: API", api, "readings/s", target)
        report(f"{label}: bare UNWIND CREATE", bare, "readings/s")
        print(f"{label}: ratio API / bare: {ratio:.2f} (target >= {RATIO_TARGET})", flush=True)


def measure_late(stack: Stack) -> None:
    service = stack.store.services.create(stack.user_id, "late", None)
    metric_id = stack.store.metrics.create(stack.user_id, service.id, "late", None).id
    for start in range(0, LATE_CHAIN, 5_000):
        stack.store.readings.append(
            metric_id,
            [NewReading(f"r{i}", T0_MS + i * 1000, 1.0) for i in range(start, start + 5_000)],
        )

    def one(reading_id: str, epoch_ms: int) -> float:
        return timed(
            lambda: stack.store.readings.append(metric_id, [NewReading(reading_id, epoch_ms, 2.0)])
        )

    before_oldest = [one(f"early{k}", T0_MS - (k + 1) * 1000) for k in range(LATE_TRIES)]
    middle = [one(f"mid{k}", T0_MS + (LATE_CHAIN // 2 + k) * 1000 + 500) for k in range(LATE_TRIES)]
    chain = f"chain of {LATE_CHAIN:,}, median of {LATE_TRIES}"
    report("late reading before the oldest", statistics.median(before_oldest) * 1000, "ms", chain)
    report("late reading in the middle", statistics.median(middle) * 1000, "ms", chain)
    stack.store.services.delete(stack.user_id, service.id)


def measure_floor(stack: Stack) -> None:
    """The fleet shape's statement alone (1,000 metrics x 1 reading, no HTTP, no lookup)
    beside FLOOR_APPEND and the bare create, in turn: what the statement's checks cost, and
    what the data model costs whatever the statement does."""
    service = stack.store.services.create(stack.user_id, "floor", None)
    sets = {
        name: [
            stack.store.metrics.create(stack.user_id, service.id, f"{name}-{m}", None).id
            for m in range(FLOOR_METRICS)
        ]
        for name in ("append", "floor")
    }
    times: dict[str, list[float]] = {"append": [], "floor": [], "bare": []}
    for n in range(FLOOR_ROUNDS):
        stamp = T0_MS + n * 60_000
        batches = {m: [NewReading(f"r{n}", stamp, 1.0)] for m in sets["append"]}
        times["append"].append(timed(partial(stack.store.readings.append_many, batches)))
        for name in ("floor", "bare"):
            metric_ids = sets["floor"] if name == "floor" else [f"bare-{m}" for m in sets["floor"]]
            params = {
                "metric_ids": metric_ids,
                "ids": [f"r{n}"] * FLOOR_METRICS,
                "timestamps": [stamp] * FLOOR_METRICS,
                "values": [1.0] * FLOOR_METRICS,
            }
            query = FLOOR_APPEND if name == "floor" else BARE_CREATE
            times[name].append(timed(partial(stack.store.executor.write, query, params)))
    median = {name: statistics.median(spent[1:]) * 1000 for name, spent in times.items()}
    shape = f"{FLOOR_METRICS:,} metrics x 1, median of {FLOOR_ROUNDS - 1}"
    report(
        "fleet append (append_many: newest read, placement, statement)",
        median["append"],
        "ms",
        shape,
    )
    report("fleet floor (FLOOR_APPEND)", median["floor"], "ms", shape)
    report("fleet bare UNWIND CREATE", median["bare"], "ms", shape)
    print(
        f"fleet: ratio bare / append {median['bare'] / median['append']:.2f}, "
        f"bare / floor {median['bare'] / median['floor']:.2f}",
        flush=True,
    )
    stack.store.services.delete(stack.user_id, service.id)
    for metric_id in sets["floor"]:
        stack.store.executor.write(BARE_DELETE, {"metric_id": f"bare-{metric_id}"})


# (metrics, readings per metric) of each shape --against measures, in turn, median of FLOOR_ROUNDS.
AGAINST_SHAPES = ((1_000, 1), (10, 1_000), (1, 5_000))


def append_statement_of(ref: str) -> str:
    """APPEND_READINGS as commit `ref` has it (the module holds string constants only)."""
    source = subprocess.run(
        ["git", "show", f"{ref}:common/metrics/queries.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    constants: dict[str, Any] = {}
    exec(compile(source, f"{ref}:common/metrics/queries.py", "exec"), constants)
    statement: str = constants["APPEND_READINGS"]
    return statement


def measure_against(stack: Stack, ref: str) -> None:
    """This checkout's append statement beside `ref`'s, the rest of append_many the same."""
    statements = {ref: append_statement_of(ref), "this": queries.APPEND_READINGS}
    service = stack.store.services.create(stack.user_id, "against", None)
    for metrics, per_metric in AGAINST_SHAPES:
        sets = {
            name: [
                stack.store.metrics.create(
                    stack.user_id, service.id, f"{name}-{metrics}-{m}", None
                ).id
                for m in range(metrics)
            ]
            for name in statements
        }
        times: dict[str, list[float]] = {name: [] for name in statements}
        for n in range(FLOOR_ROUNDS):
            for name in list(statements)[:: 1 if n % 2 else -1]:
                batches = {
                    m: [
                        NewReading(f"r{n}-{k}", T0_MS + (n * per_metric + k) * 1000, 1.0)
                        for k in range(per_metric)
                    ]
                    for m in sets[name]
                }
                with patch.object(queries, "APPEND_READINGS", statements[name]):
                    times[name].append(timed(partial(stack.store.readings.append_many, batches)))
        median = {name: statistics.median(spent[1:]) * 1000 for name, spent in times.items()}
        shape = f"{metrics:,} metrics x {per_metric:,}, median of {FLOOR_ROUNDS - 1}"
        report(f"append_many, APPEND_READINGS of {ref}", median[ref], "ms", shape)
        report("append_many, APPEND_READINGS of this checkout", median["this"], "ms", shape)
        print(f"{shape}: this / {ref} {median['this'] / median[ref]:.2f}", flush=True)
    stack.store.services.delete(stack.user_id, service.id)


STAMP_ROUNDS = 13


def measure_stamp(stack: Stack) -> None:
    """The fleet shape through append_many with APPEND_READINGS as it is and without its
    `last_append_at` stamp, in turn, the bare create beside them: what the stamp the sweeps
    read (METRICS_DUE, SAVE_SCAN_MARKS) costs an append. The variant is not correct (the
    sweeps would miss its metrics): a measurement only."""
    stamp = "SET found.last_append_at = $now\n"
    if stamp not in queries.APPEND_READINGS:
        raise RuntimeError("APPEND_READINGS no longer stamps as this benchmark expects")
    statements = {
        "with the stamp": queries.APPEND_READINGS,
        "without": queries.APPEND_READINGS.replace(stamp, ""),
    }
    service = stack.store.services.create(stack.user_id, "stamp", None)
    sets = {
        name: [
            stack.store.metrics.create(stack.user_id, service.id, f"{name}-{m}", None).id
            for m in range(FLOOR_METRICS)
        ]
        for name in [*statements, "bare"]
    }
    times: dict[str, list[float]] = {name: [] for name in sets}
    for n in range(STAMP_ROUNDS):
        at = T0_MS + n * 60_000
        for name in list(statements)[:: 1 if n % 2 else -1]:
            batches = {m: [NewReading(f"r{n}", at, 1.0)] for m in sets[name]}
            with patch.object(queries, "APPEND_READINGS", statements[name]):
                times[name].append(timed(partial(stack.store.readings.append_many, batches)))
        params = {
            "metric_ids": [f"bare-{m}" for m in sets["bare"]],
            "ids": [f"r{n}"] * FLOOR_METRICS,
            "timestamps": [at] * FLOOR_METRICS,
            "values": [1.0] * FLOOR_METRICS,
        }
        times["bare"].append(timed(partial(stack.store.executor.write, BARE_CREATE, params)))
    median = {name: statistics.median(spent[1:]) * 1000 for name, spent in times.items()}
    shape = f"{FLOOR_METRICS:,} metrics x 1, median of {STAMP_ROUNDS - 1}"
    for name, spent_ms in median.items():
        report(f"{stack.store.executor.engine}: append_many, {name}", spent_ms, "ms", shape)
    rounds = [
        without / with_
        for without, with_ in zip(times["without"][1:], times["with the stamp"][1:], strict=True)
    ]
    print(
        f"without / with the stamp: {median['without'] / median['with the stamp']:.2f} "
        f"(rounds: {', '.join(f'{x:.2f}' for x in rounds)})",
        flush=True,
    )
    stack.store.services.delete(stack.user_id, service.id)
    for metric_id in sets["bare"]:
        stack.store.executor.write(BARE_DELETE, {"metric_id": f"bare-{metric_id}"})


RUNS_AGAINST = 4  # even: each app goes first in half the rounds


@contextmanager
def checkout_of(ref: str) -> Iterator[Path]:
    """Commit `ref`'s files in a temporary directory (with the module `make` generates)."""
    with tempfile.TemporaryDirectory(prefix="neonomaly-bench-ref-") as tmp:
        archive = subprocess.run(
            ["git", "archive", ref], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        for generated in ROOT.glob("common/agents/prompb/remote_pb2.py*"):
            shutil.copy(generated, Path(tmp) / generated.relative_to(ROOT))
        yield Path(tmp)


def measure_api_against(ref: str, neo4j: Neo4jServer | None = None) -> None:
    """Each shape of the engine (FalkorDB, or `neo4j`) through `ref`'s app and this
    checkout's, and the bare create, in turn (the order of the two apps swapped every
    round), on one store. Both apps run in this checkout's virtualenv."""
    shapes = FALKORDB_SHAPES if neo4j is None else NEO4J_SHAPES
    with checkout_of(ref) as other, embedded_stack(neo4j) as stack:
        apps = {ref: start_app(stack.env, root=other), "this": start_app(stack.env)}
        headers = {"X-API-Key": stack.key, "Content-Type": "application/json"}
        clients = {
            name: httpx.Client(base_url=app.base_url, headers=headers, timeout=300)
            for name, app in apps.items()
        }
        try:
            for name, http in clients.items():
                run_shape(stack, http, Shape("warm-up", 10, 100, 2, "ids"), f"warm-{name}")
            rates: dict[Shape, dict[str, list[float]]] = {
                shape: {ref: [], "this": [], "bare": []} for shape in shapes
            }
            for n in range(RUNS_AGAINST):
                for shape in shapes:
                    for name in list(clients)[:: -1 if n % 2 else 1]:
                        run = Run(stack, shape, f"{name}-{n}")
                        bodies = run.bodies()
                        try:
                            spent = timed(partial(post_all, clients[name], bodies))
                        finally:
                            run.clean_up()
                        rates[shape][name].append(shape.readings / spent)
                    run = Run(stack, shape, f"bare-{n}")
                    try:
                        spent = timed(partial(bare_all, stack, run.bare_params()))
                    finally:
                        run.clean_up()
                    rates[shape]["bare"].append(shape.readings / spent)
                    print(f"# round {n}: {shape.name} done", flush=True)
        finally:
            for http in clients.values():
                http.close()
            for app in apps.values():
                stop_app(app)
    for shape, by_app in rates.items():
        bare = by_app["bare"]
        for name in (ref, "this"):
            ratio = statistics.median(a / b for a, b in zip(by_app[name], bare, strict=True))
            report(
                f"{shape.name}: API of {name}",
                statistics.median(by_app[name]),
                "readings/s",
                f"ratio to bare {ratio:.2f}, target >= {RATIO_TARGET}",
            )
        report(f"{shape.name}: bare UNWIND CREATE", statistics.median(bare), "readings/s")
        each = [t / r for t, r in zip(by_app["this"], by_app[ref], strict=True)]
        print(
            f"{shape.name}: readings/s of this / {ref}: {statistics.median(each):.2f} "
            f"(rounds: {', '.join(f'{x:.2f}' for x in each)})",
            flush=True,
        )


def single_posts(stack: Stack, base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers={"X-API-Key": stack.key}, timeout=30) as http:
        service = http.post("/api/services", json={"name": "single"}).json()
        metric = http.post("/api/metrics", json={"name": "cpu", "service_id": service["id"]})
        metric_id = metric.json()["id"]
        latencies = []
        for i in range(SINGLE_POSTS):
            body = {"value": float(i), "timestamp": iso(T0_MS + i * 60_000)}
            started = time.perf_counter()
            response = http.post(f"/api/metrics/{metric_id}/readings", json=body)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 201:
                raise RuntimeError(response.text)
    quantiles = statistics.quantiles(latencies, n=100)
    report("single_post_latency_p50", quantiles[49] * 1000, "ms", f"{SINGLE_POSTS} POSTs")
    report("single_post_latency_p99", quantiles[98] * 1000, "ms", f"{SINGLE_POSTS} POSTs")


@contextmanager
def neo4j_server() -> Iterator[Neo4jServer | None]:
    with tempfile.TemporaryDirectory(prefix="neonomaly-bench-neo4j-") as logs:
        try:
            server = start_neo4j(Path(logs))
        except Neo4jUnavailableError as exc:
            print(f"# neo4j skipped: {exc}", flush=True)
            yield None
            return
        try:
            yield server
        finally:
            server.stop()


def main() -> None:
    if sys.argv[1:2] == ["--api-against"] and len(sys.argv) == 3:
        measure_api_against(sys.argv[2])
        return
    if sys.argv[1:2] == ["--api-against"] and sys.argv[3:] == ["--neo4j"]:
        with neo4j_server() as server:
            if server is not None:
                measure_api_against(sys.argv[2], server)
        return
    if sys.argv[1:2] == ["--against"] and len(sys.argv) == 3:
        with embedded_stack() as stack:
            measure_against(stack, sys.argv[2])
        return
    if sys.argv[1:2] == ["--against"] and sys.argv[3:] == ["--neo4j"]:
        with neo4j_server() as server:
            if server is not None:
                with embedded_stack(server) as stack:
                    measure_against(stack, sys.argv[2])
        return
    if sys.argv[1:] == ["--stamp"]:
        with embedded_stack() as stack:
            measure_stamp(stack)
        return
    if sys.argv[1:] == ["--stamp", "--neo4j"]:
        with neo4j_server() as server:
            if server is not None:
                with embedded_stack(server) as stack:
                    measure_stamp(stack)
        return
    print("# ingest: API against a bare UNWIND CREATE of the same readings, side by side")
    with embedded_stack() as stack, running_app(stack) as app:
        measure_shapes("falkordb", stack, app.base_url, FALKORDB_SHAPES)
        measure_floor(stack)
        single_posts(stack, app.base_url)
        measure_late(stack)
    with neo4j_server() as server:
        if server is None:
            return
        with embedded_stack(server) as stack, running_app(stack) as app:
            measure_shapes("neo4j", stack, app.base_url, NEO4J_SHAPES)


if __name__ == "__main__":
    main()
