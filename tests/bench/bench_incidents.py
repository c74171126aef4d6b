"""Incident speed: joining anomalies as open incidents pile up, the sweep, the detail view.

    .venv/bin/python tests/bench/bench_incidents.py    (or `make bench`)

Starts its own embedded server in a temporary directory; prints one figure per line,
medians of several runs, with the machine's core count.
- build_incidents for one job's cluster of 10 anomalies while the owner already has 0, 100
  or 1,000 open incidents of unrelated metrics (the join statement looks at every open
  incident's members: this is what it costs);
- one sweep step (resolve check + 200 incidents to notify, no channel);
- GET /api/incidents/{id}'s work (incident_detail) for 1,000 members over 20 metrics.

    .venv/bin/python tests/bench/bench_incidents.py --resolved N [N ...]

An owner with N resolved incidents (years of paging) and the statements that look at one
of their incidents or at their open ones: a join of a cluster into a new incident (every
run opens one, resolved before the next), GET of an incident, acknowledging and resolving
it, the sweep's resolve of quiet incidents. Medians, with the load average: the statements
used to walk every incident the owner ever had.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from common.anomalies.models import NewAnomaly  # noqa: E402
from common.epoch import now_ms  # noqa: E402
from common.graph.params import batches  # noqa: E402
from common.incidents.building import build_incidents  # noqa: E402
from common.incidents.detail import incident_detail  # noqa: E402
from common.metrics.models import MetricRef, NewReading  # noqa: E402
from common.settings import Settings  # noqa: E402
from common.stores import Repositories  # noqa: E402
from common.users.keys import new_api_key  # noqa: E402
from tests.bench.stack import CORES, T0_MS, embedded_stack  # noqa: E402

RUNS = 7
MEMBERS_PER_INCIDENT = 20


def metric(store: Repositories, owner_id: str, service_id: str, name: str) -> MetricRef:
    created = store.metrics.create(owner_id, service_id, name, None)
    return MetricRef(id=created.id, name=name, service_id=service_id, owner_id=owner_id)


def anomalies(store: Repositories, ref: MetricRef, start_ms: int, count: int) -> list[NewAnomaly]:
    """`count` readings a minute apart from start_ms, stored, each flagged as an anomaly."""
    readings = [NewReading(f"r{start_ms}-{i}", start_ms + i * 60_000, 90.0) for i in range(count)]
    store.readings.append(ref.id, readings)
    points = [
        NewAnomaly(
            ref.id, r.id, timestamp_ms=r.timestamp_ms, value=90.0, expected=50.0,
            lower=45.0, upper=55.0, score=8.0, method="rolling",
            event_start_ms=readings[0].timestamp_ms, event_end_ms=readings[-1].timestamp_ms,
        )
        for r in readings
    ]  # fmt: skip
    store.anomalies.save(ref.id, points, job_id="bench")
    return points


def bench_join(store: Repositories, settings: Settings, open_incidents: int) -> float:
    """Median ms of build_incidents for a 10-anomaly cluster, with `open_incidents` open."""
    owner = store.users.create(f"join-{open_incidents}", new_api_key().hashed)
    noise_service = store.services.create(owner.id, "noise", None).id
    gap = timedelta(seconds=settings.incident_gap_seconds * 3)
    for i in range(open_incidents):
        # Each on its own metric far apart in time: unrelated, so each opens an incident.
        noisy = metric(store, owner.id, noise_service, f"noise-{i}")
        start = T0_MS + i * int(gap.total_seconds() * 1000)
        build_incidents(
            store, noisy, anomalies(store, noisy, start, MEMBERS_PER_INCIDENT), settings
        )
    service_id = store.services.create(owner.id, "api", None).id
    timings = []
    for run in range(RUNS):
        target = metric(store, owner.id, service_id, f"latency-{run}")
        points = anomalies(store, target, T0_MS - (run + 1) * 10**9, 10)
        started = time.perf_counter()
        build_incidents(store, target, points, settings)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def bench_detail(store: Repositories, settings: Settings) -> tuple[float, int]:
    owner = store.users.create("detail", new_api_key().hashed)
    service_id = store.services.create(owner.id, "api", None).id
    incident_id = ""
    for i in range(20):
        ref = metric(store, owner.id, service_id, f"m{i}")
        [change] = build_incidents(
            store, ref, anomalies(store, ref, T0_MS + i * 60_000, 50), settings
        )
        incident_id = change.incident_id
    incident = store.incidents.get(owner.id, incident_id)
    assert incident is not None
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        detail = incident_detail(store, incident, settings.incident_max_hops)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), len(detail.anomalies)


def bench_notify_scan(store: Repositories) -> float:
    """ms to find incidents to notify (the sweep's read), with every bench incident pending."""
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        store.incidents.to_notify(200)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


# The bench's own set-up, not the product's: `count` resolved incidents of an owner, each
# holding one anomaly of $metric_id before $at (the incidents' history, as years of paging
# leave it), numbered from $first, in one statement.
RESOLVED_INCIDENTS_OF_OWNER = """
MATCH (u:User {id: $owner_id})
UNWIND range($first, $first + $count - 1) AS k
CREATE (u)-[:HAS_INCIDENT]->(i:Incident {
    id: 'resolved-' + toString(k), status: 'resolved', revision: 2, notified_revision: 2,
    opened_at: $at, last_joined_at: $at, started_at: $at, ended_at: $at, resolved_at: $at,
    resolved_by: 'quiet', last_change: 'resolved'})
CREATE (i)-[:INCLUDES]->(:Anomaly {
    id: 'past-' + toString(k), metric_id: $metric_id, timestamp: $at - k * 60000,
    value: 9.0, expected: 1.0, score: 4.0, method: 'rolling', muted: false})
"""


def add_resolved_incidents(
    store: Repositories, owner_id: str, metric_id: str, count: int, first: int = 1
) -> None:
    """`count` resolved incidents of the owner, a month old, numbered from `first`."""
    at = now_ms() - 30 * 24 * 3_600_000
    for chunk in batches(range(first, first + count), 5_000):
        store.incidents.executor.write(
            RESOLVED_INCIDENTS_OF_OWNER,
            {"owner_id": owner_id, "first": chunk[0], "count": len(chunk),
             "metric_id": metric_id, "at": at},
        )  # fmt: skip


@contextmanager
def timing(timings: dict[str, list[float]], name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)


def bench_resolved(store: Repositories, settings: Settings, counts: list[int]) -> None:
    owner = store.users.create("resolved", new_api_key().hashed)
    service_id = store.services.create(owner.id, "api", None).id
    past = metric(store, owner.id, service_id, "past")
    made = 0
    for count in counts:
        add_resolved_incidents(store, owner.id, past.id, count - made, made + 1)
        made = count
        timings: dict[str, list[float]] = {}
        for run in range(RUNS):
            target = metric(store, owner.id, service_id, f"latency-{count}-{run}")
            points = anomalies(store, target, now_ms() - 20 * 60_000, 10)
            with timing(timings, "join"):
                [change] = build_incidents(store, target, points, settings)
            with timing(timings, "get"):
                store.incidents.get(owner.id, change.incident_id)
            with timing(timings, "acknowledge"):
                store.incidents.acknowledge(owner.id, change.incident_id)
            with timing(timings, "resolve_quiet"):
                store.incidents.resolve_quiet(3_600_000)
            with timing(timings, "resolve"):
                store.incidents.resolve(owner.id, change.incident_id, "bench")
        figures = ", ".join(
            f"{name} {statistics.median(ms):.1f} ms" for name, ms in timings.items()
        )
        print(
            f"an_owner_with_{count}_resolved_incidents: {figures} (medians of {RUNS}; "
            f"load {os.getloadavg()[0]:.1f}, cores={CORES})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolved", nargs="*", type=int, default=[])
    args = parser.parse_args()
    if args.resolved:
        with embedded_stack() as stack:
            bench_resolved(stack.store, Settings(_env_file=None), sorted(args.resolved))
        return
    with embedded_stack() as stack:
        settings = Settings(
            graph_url=stack.server.graph_url,
            redis_url=stack.server.redis_url,
            # The bench's anomalies are from 2026-01-01 on: not history for this bench.
            incident_resolve_seconds=100 * 365 * 24 * 3600,
            _env_file=None,
        )
        for open_incidents in (0, 100, 1000):
            ms = bench_join(stack.store, settings, open_incidents)
            print(
                f"build_incidents_10_anomalies_with_{open_incidents}_open_incidents: {ms:.1f} ms "
                f"(cores={CORES}; {MEMBERS_PER_INCIDENT} members each)"
            )
        ms = bench_notify_scan(stack.store)
        print(f"incidents_to_notify_200_of_1100_pending: {ms:.1f} ms (cores={CORES})")
        ms, members = bench_detail(stack.store, settings)
        print(f"incident_detail_{members}_members_20_metrics: {ms:.1f} ms (cores={CORES})")


if __name__ == "__main__":
    main()
