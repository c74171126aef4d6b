"""A maintenance window's reach into the past over all of an owner's metrics: linear in
the metrics it covers.

    .venv/bin/python tests/bench/bench_window_reach.py [METRICS ...] [--dense ANOMALIES ...]
    (or `make bench`)

Starts its own embedded server in a temporary directory. For each size (default 1,000,
2,000 and 4,000): an owner with that many metrics in one service, each with one reading
and one anomaly an hour ago that sweeps have judged; then a window for all of the owner's
metrics over that hour is made (its reach queued nowhere) and its reach applied as the
worker's `neonomaly.window-reach` applies it (common.maintenance.reach.apply_reach),
timed. Prints the seconds, the microseconds per metric, the write statements and how
many anomalies were muted and metrics marked, with the machine's core count: per-metric
time that stays flat as the size doubles is linear work (the reach before this re-walked
every metric of the owner in each statement of WRITE_BATCH).

`--dense N`: one metric with N anomalies a minute apart, all in the window; prints the
reach's seconds, its write statements and the longest one (what another tenant's write
waits for at most on the embedded store's single writer): muted anomalies stay in the
index range each statement walks, so statements over the whole range grew with N.

`--resolved N`: an owner with N resolved incidents (one anomaly each, on a metric of its
own) and one open incident of three recent anomalies, two of which a window over one
metric then mutes: a small reach, repeated (a window edited back and forth), that should
cost the same whatever the owner's past. Prints the median reach and the median of the
statement that resolves or updates the incidents its mute took members from
(RESOLVE_OR_UPDATE_MUTED_INCIDENTS), and the load average: that look used to walk all of
the owner's incidents on every reach.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from common.anomalies.models import NewAnomaly  # noqa: E402
from common.epoch import now_ms  # noqa: E402
from common.graph.params import batches  # noqa: E402
from common.incidents.building import build_incidents  # noqa: E402
from common.maintenance import queries as maintenance_queries  # noqa: E402
from common.maintenance.models import WindowSpec  # noqa: E402
from common.maintenance.reach import apply_reach  # noqa: E402
from common.maintenance.service import create_window  # noqa: E402
from common.metrics.models import NewReading, ScanMark  # noqa: E402
from common.stores import Repositories  # noqa: E402
from common.users.keys import new_api_key  # noqa: E402
from tests.bench.bench_incidents import add_resolved_incidents  # noqa: E402
from tests.bench.stack import CORES, embedded_stack  # noqa: E402
from tests.support import settings_for  # noqa: E402

SIZES = (1_000, 2_000, 4_000)
HOUR_MS = 3_600_000


class Nowhere:
    """A reach queue that queues nothing: the bench applies the reach itself, timed."""

    def enqueue_window_reach(self, window_id: str) -> None:
        pass


def owner_with_metrics(store: Repositories, size: int, at_ms: int) -> str:
    """An owner with `size` judged metrics, each with one reading and anomaly at `at_ms`."""
    owner = store.users.create(f"owner{size}", new_api_key().hashed)
    service = store.services.create(owner.id, "fleet", None)
    metric_ids = [store.metrics.create(owner.id, service.id, f"m{i}", None).id for i in range(size)]
    for metric_id in metric_ids:
        store.readings.append(metric_id, [NewReading("r0", at_ms, 9.0)])
        store.anomalies.save(
            metric_id,
            [
                NewAnomaly(
                    metric_id, "r0", timestamp_ms=at_ms, value=9.0, expected=1.0, lower=0.0,
                    upper=2.0, score=4.0, method="rolling", event_start_ms=at_ms,
                    event_end_ms=at_ms,
                )
            ],
        )  # fmt: skip
    for chunk in batches(metric_ids):
        store.metrics.save_scan_marks(
            [
                ScanMark(
                    metric_id=metric_id, after_ms=None, through_ms=at_ms, judged=1, raw=1,
                    compacted_through_ms=None, late_seq=0, appended_at_ms=None, lag_ms=None,
                    note=None,
                )
                for metric_id in chunk
            ]
        )  # fmt: skip
    return owner.id


def time_writes(store: Repositories, only: str | None = None) -> list[float]:
    """The seconds of each write statement the maintenance repository runs from now on
    (`only`: that statement's alone), in a list that fills as they run."""
    seconds: list[float] = []
    write = store.maintenance.executor.write

    def timed(query: str, params: dict[str, object] | None = None) -> list[dict[str, object]]:
        started = time.perf_counter()
        try:
            return write(query, params)
        finally:
            if only is None or query == only:
                seconds.append(time.perf_counter() - started)

    store.maintenance.executor.write = timed  # type: ignore[method-assign]
    return seconds


def bench(size: int) -> None:
    with embedded_stack() as stack:
        store = stack.store
        at_ms = now_ms() - HOUR_MS
        owner_id = owner_with_metrics(store, size, at_ms)
        window = create_window(
            store.maintenance,
            Nowhere(),
            owner_id,
            WindowSpec("migration", start_ms=at_ms - HOUR_MS // 2, end_ms=at_ms + HOUR_MS // 2),
            10,
        )
        statements = time_writes(store)
        started = time.perf_counter()
        report = apply_reach(store.maintenance, window.id, lambda ids: set(), now_ms())
        seconds = time.perf_counter() - started
    assert report is not None
    print(
        f"window_reach_over_{size}_metrics: {seconds:.2f} s, "
        f"{1e6 * seconds / size:.0f} us a metric, {len(statements)} write statements, "
        f"{report.muted} anomalies muted, {report.relearnt} metrics marked (cores={CORES})",
        flush=True,
    )


def bench_dense(count: int) -> None:
    with embedded_stack() as stack:
        store = stack.store
        owner = store.users.create(f"dense{count}", new_api_key().hashed)
        service = store.services.create(owner.id, "fleet", None)
        metric_id = store.metrics.create(owner.id, service.id, "m", None).id
        first = now_ms() - (count + 10) * 60_000
        times = [first + i * 60_000 for i in range(count)]
        for chunk in batches(times, 5_000):
            store.readings.append(metric_id, [NewReading(f"r{t}", t, 9.0) for t in chunk])
            store.anomalies.save(
                metric_id,
                [
                    NewAnomaly(
                        metric_id, f"r{t}", timestamp_ms=t, value=9.0, expected=1.0, lower=0.0,
                        upper=2.0, score=4.0, method="rolling", event_start_ms=t, event_end_ms=t,
                    )
                    for t in chunk
                ],
            )  # fmt: skip
        window = create_window(
            store.maintenance,
            Nowhere(),
            owner.id,
            WindowSpec("migration", start_ms=times[0], end_ms=times[-1] + 1, metric_id=metric_id),
            10,
        )
        seconds = time_writes(store)
        started = time.perf_counter()
        report = apply_reach(store.maintenance, window.id, lambda ids: set(), now_ms())
        total = time.perf_counter() - started
    assert report is not None
    print(
        f"window_reach_over_{count}_anomalies_of_one_metric: {total:.2f} s, "
        f"{len(seconds)} write statements, the longest {1000 * max(seconds):.0f} ms, "
        f"{report.muted} anomalies muted (cores={CORES})",
        flush=True,
    )


RESOLVED_REACHES = 21


def bench_resolved(count: int) -> None:
    with embedded_stack() as stack:
        store = stack.store
        settings = settings_for(stack.server)
        owner = store.users.create(f"resolved{count}", new_api_key().hashed)
        service = store.services.create(owner.id, "fleet", None)
        past = store.metrics.create(owner.id, service.id, "past", None)
        metric = store.metrics.create(owner.id, service.id, "m", None)
        ref = store.metrics.get_ref(metric.id)
        assert ref is not None
        add_resolved_incidents(store, owner.id, past.id, count)
        times = [now_ms() - (10 - i) * 60_000 for i in range(3)]
        store.readings.append(metric.id, [NewReading(f"r{t}", t, 9.0) for t in times])
        stored = store.anomalies.save(
            metric.id,
            [
                NewAnomaly(
                    metric.id, f"r{t}", timestamp_ms=t, value=9.0, expected=1.0, lower=0.0,
                    upper=2.0, score=4.0, method="rolling", event_start_ms=t, event_end_ms=t,
                )
                for t in times
            ],
        )  # fmt: skip
        [opened] = build_incidents(store, ref, stored, settings)
        resolve_seconds = time_writes(store, maintenance_queries.RESOLVE_OR_UPDATE_MUTED_INCIDENTS)
        spans = [
            WindowSpec("drill", start_ms=times[0], end_ms=times[2], metric_id=metric.id),
            WindowSpec("drill", start_ms=times[0], end_ms=times[1], metric_id=metric.id),
        ]
        window = create_window(store.maintenance, Nowhere(), owner.id, spans[0], 10)
        reach_seconds = []
        for turn in range(RESOLVED_REACHES):
            if turn:  # the window edited: a reach again (muting nothing new)
                store.maintenance.update(owner.id, window.id, spans[turn % 2])
            started = time.perf_counter()
            report = apply_reach(store.maintenance, window.id, lambda ids: set(), now_ms())
            reach_seconds.append(time.perf_counter() - started)
            assert report is not None
        incident = store.incidents.get(owner.id, opened.incident_id)
        assert incident is not None and incident.members == 1 and incident.status == "open"
    print(
        f"window_reach_of_an_owner_with_{count}_resolved_incidents: a reach "
        f"{1000 * statistics.median(reach_seconds):.1f} ms, its resolve "
        f"{1000 * statistics.median(resolve_seconds):.2f} ms (medians of "
        f"{RESOLVED_REACHES}; load {os.getloadavg()[0]:.1f}, cores={CORES})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", nargs="*", type=int, help="owners' sizes (metrics)")
    parser.add_argument("--dense", nargs="*", type=int, default=[], help="anomalies of one metric")
    parser.add_argument(
        "--resolved", nargs="*", type=int, default=[], help="resolved incidents of the owner"
    )
    args = parser.parse_args()
    for size in args.metrics or ([] if args.dense or args.resolved else SIZES):
        bench(size)
    for count in args.dense:
        bench_dense(count)
    for count in args.resolved:
        bench_resolved(count)


if __name__ == "__main__":
    main()
