"""Deleting a big metric, and what it costs another tenant meanwhile.

    .venv/bin/python tests/bench/bench_deletes.py [SIZE ...]    (or `make bench`)

Starts its own embedded server in a temporary directory. For each size (default 10,000
and 100,000): a metric of SIZE readings, every one flagged as an anomaly, all in one
incident, seeded straight into the store; then `MetricRepository.delete` of it, timed,
while another tenant appends one reading at a time to its own metric over its own
connection. Prints the delete's seconds and the other tenant's append latencies during it
(count, p50, p99, max), with the machine's core count.

Issue 21's review measured the one-statement delete this replaced: 10,000 anomalies took
10.8 s and held every other writer as long; 100,000 never finished.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from common.anomalies.models import NewAnomaly  # noqa: E402
from common.incidents.building import build_incidents  # noqa: E402
from common.metrics.models import MetricRef, NewReading  # noqa: E402
from common.settings import Settings  # noqa: E402
from common.stores import Repositories, connect_graph  # noqa: E402
from common.users.keys import new_api_key  # noqa: E402
from tests.bench.stack import CORES, T0_MS, embedded_stack  # noqa: E402
from tests.support import settings_for  # noqa: E402

SIZES = (10_000, 100_000)
SEED_BATCH = 10_000


def flagged_metric(store: Repositories, settings: Settings, size: int) -> tuple[str, str]:
    """A metric of `size` readings a second apart, each an anomaly, all in one incident;
    (owner id, metric id)."""
    owner = store.users.create("deleter", new_api_key().hashed)
    service = store.services.create(owner.id, "big", None)
    metric = store.metrics.create(owner.id, service.id, "cpu", None)
    start = T0_MS
    for first in range(0, size, SEED_BATCH):
        store.readings.append(
            metric.id,
            [
                NewReading(f"r{i}", start + i * 1000, float(i))
                for i in range(first, min(size, first + SEED_BATCH))
            ],
        )
    end = start + (size - 1) * 1000
    found = [
        NewAnomaly(
            metric.id, f"r{i}", timestamp_ms=start + i * 1000, value=float(i), expected=0.0,
            lower=0.0, upper=0.5, score=2.0, method="rolling", event_start_ms=start,
            event_end_ms=end,
        )
        for i in range(size)
    ]  # fmt: skip
    store.anomalies.save(metric.id, found, job_id="bench")
    # Recent enough to make an incident: the incident's reading time is "now".
    recent = settings.model_copy(update={"incident_resolve_seconds": 10**9})
    build_incidents(store, MetricRef(metric.id, "cpu", service.id, owner.id), found, recent)
    return owner.id, metric.id


class OtherTenant(threading.Thread):
    """Appends one reading at a time to its own metric, over its own connection, until
    stopped (at most 100,000); notes each append's seconds."""

    def __init__(self, settings: Settings):
        super().__init__(daemon=True)
        self.store = connect_graph(settings)
        owner = self.store.users.create("neighbour", new_api_key().hashed)
        service = self.store.services.create(owner.id, "small", None)
        self.metric_id = self.store.metrics.create(owner.id, service.id, "cpu", None).id
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        for i in range(100_000):
            if self.stop.is_set():
                break
            started = time.perf_counter()
            self.store.readings.append(self.metric_id, [NewReading(f"n{i}", T0_MS + i, 1.0)])
            self.latencies.append(time.perf_counter() - started)
            time.sleep(0.01)  # a busy agent, not a flood
        self.store.close()


def bench(size: int) -> None:
    with embedded_stack() as stack:
        settings = settings_for(stack.server)
        started = time.perf_counter()
        owner_id, metric_id = flagged_metric(stack.store, settings, size)
        seeded = time.perf_counter() - started
        neighbour = OtherTenant(settings)
        neighbour.start()
        time.sleep(1)  # its first appends, before the delete
        before = len(neighbour.latencies)
        started = time.perf_counter()
        stack.store.metrics.delete(owner_id, metric_id)
        seconds = time.perf_counter() - started
        # The append in flight when the delete ended counts too: it may have waited all along.
        neighbour.stop.set()
        neighbour.join(60)
        during = neighbour.latencies[before:]
    ms = sorted(1000 * latency for latency in during) or [0.0]
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(
        f"delete_metric_{size}_readings_{size}_anomalies_in_one_incident: {seconds:.1f} s "
        f"(seeded in {seeded:.0f} s); other tenant's appends meanwhile: {len(during)}, "
        f"p50 {statistics.median(ms):.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms "
        f"(cores={CORES})",
        flush=True,
    )


def main() -> None:
    for size in [int(arg) for arg in sys.argv[1:]] or SIZES:
        bench(size)


if __name__ == "__main__":
    main()
