"""Graph store speed: reading windows, single appends as the graph grows, worker memory.

    .venv/bin/python tests/bench/bench_graph.py    (or `make bench`)

Starts its own embedded server in a temporary directory; prints one figure per line,
medians of several runs, with the machine's core count.
- read_window of 10,000 and 100,000 readings (the index range read detection uses), raw
  and compacted (all but the newest 1,000 in chunks, as a week-old metric is), with the
  time spent in the executor (query + reply parsing) beside the total;
- where a page of READ_BATCH raw readings (one statement of a long window) spends its
  time: the statement in the server, the reply's serialisation and transfer, the parsing in
  the client (redis-py/hiredis, then the executor), the conversion to numpy and ordering;
- a single-reading append as the graph holds more readings (of other metrics);
- peak RSS of a child process that reads 1,000,000 readings with read_window and runs
  rolling detection on them (what a 1,000,000-reading job holds at once).
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from common.graph.executors import falkordb_query, falkordb_rows  # noqa: E402
from common.graph.params import MAX_MS, READ_BATCH  # noqa: E402
from common.metrics import queries as q  # noqa: E402
from common.metrics.compaction import MaintenanceReport, compact_metric  # noqa: E402
from common.metrics.models import NewReading  # noqa: E402
from common.metrics.repository import _columns, _sorted  # noqa: E402
from common.settings import Settings  # noqa: E402
from common.stores import Repositories, connect_graph  # noqa: E402
from tests.bench.stack import CORES, T0_MS, Stack, embedded_stack, store_metric  # noqa: E402

RUNS = 7
BATCH = 5_000
MEMORY_READINGS = 1_000_000


def fill(
    store: Repositories, metric_id: str, count: int, prefix: str, start_ms: int = T0_MS
) -> None:
    for first in range(0, count, BATCH):
        store.readings.append(
            metric_id,
            [
                NewReading(f"{prefix}{i}", start_ms + i * 1000, float(i % 1000))
                for i in range(first, min(first + BATCH, count))
            ],
        )


def bench_read_window(stack: Stack, metric_id: str, size: int) -> tuple[float, float]:
    """Median ms of read_window over `size` readings, and of the executor calls alone
    (a statement per READ_BATCH readings, as read_window reads a long window of raw ones)."""
    start, end = T0_MS, T0_MS + size * 1000
    pages = [
        {"metric_id": metric_id, "start": low, "end": min(low + READ_BATCH * 1000, end)}
        for low in range(start, end, READ_BATCH * 1000)
    ]
    totals, executor = [], []
    for _ in range(RUNS):
        started = time.perf_counter()
        series = stack.store.readings.read_window(metric_id, start, end)
        totals.append((time.perf_counter() - started) * 1000)
        assert len(series) == size, len(series)
        started = time.perf_counter()
        for page in pages:
            stack.store.executor.read(q.READ_WINDOW_UNORDERED, page)
        executor.append((time.perf_counter() - started) * 1000)
    return statistics.median(totals), statistics.median(executor)


def page_split(stack: Stack, metric_id: str) -> dict[str, float]:
    """Median ms of each part of one READ_BATCH page of raw readings (FalkorDB only)."""
    params = {"metric_id": metric_id, "start": T0_MS, "end": T0_MS + READ_BATCH * 1000}
    text = falkordb_query(q.READ_WINDOW_UNORDERED, params)
    graph = stack.store.executor._read_graph  # type: ignore[attr-defined]
    parts: dict[str, list[float]] = {
        "server statement": [],
        "serialisation+transfer+hiredis": [],
        "executor parse": [],
        "numpy+order": [],
    }
    for _ in range(RUNS):
        started = time.perf_counter()
        reply = graph.execute_command("GRAPH.RO_QUERY", graph.name, text, "--compact")
        received = (time.perf_counter() - started) * 1000
        [stat] = [s for s in reply[-1] if s.startswith("Query internal execution time")]
        server = float(stat.split(": ")[1].split(" ")[0])
        parts["server statement"].append(server)
        parts["serialisation+transfer+hiredis"].append(received - server)
        started = time.perf_counter()
        [row] = falkordb_rows(reply, graph)
        parts["executor parse"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        _sorted(_columns(row))
        parts["numpy+order"].append((time.perf_counter() - started) * 1000)
    return {part: statistics.median(ms) for part, ms in parts.items()}


def compacted_metric(stack: Stack, name: str, count: int, raw: int) -> str:
    """A metric of `count` readings, all but the newest `raw` compacted into chunks."""
    metric_id = store_metric(stack, name)
    fill(stack.store, metric_id, count, name[0])
    [target] = [t for t in stack.store.readings.compaction_targets("", 1000) if t.id == metric_id]
    report = MaintenanceReport()
    compact_metric(stack.store.readings, target, T0_MS + (count - raw) * 1000, report)
    assert report.compacted == count - raw, report
    return metric_id


def bench_single_append(stack: Stack, metric_id: str, label: str) -> float:
    latencies = []
    for i in range(25):
        reading = NewReading(f"{label}-{i}", MAX_MS // 2 + i, 1.0)
        started = time.perf_counter()
        stack.store.readings.append(metric_id, [reading])
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies)


def _peak_rss_child(graph_url: str, metric_id: str, detect: bool, out: Any) -> None:
    """In a fresh process: read the window (and detect); report peak RSS in MB."""
    store = connect_graph(Settings(graph_url=graph_url, redis_url="redis://unused", _env_file=None))
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    series = store.readings.read_window(metric_id, None, None)
    read_s = time.perf_counter() - started
    detect_s = 0.0
    if detect:
        from common.detection import detect as run_detect
        from common.methods import MethodSettings

        started = time.perf_counter()
        run_detect(series.values, series.timestamps_ms, MethodSettings(method="rolling"))
        detect_s = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.send((len(series), baseline, peak, read_s, detect_s))
    store.close()


def peak_rss(stack: Stack, metric_id: str, detect: bool) -> tuple[int, float, float, float, float]:
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_peak_rss_child, args=(stack.server.graph_url, metric_id, detect, send)
    )
    child.start()
    if not receive.poll(300):
        child.kill()
        raise RuntimeError("the memory child did not answer within 300 s")
    result = receive.recv()
    child.join(30)
    return result  # type: ignore[no-any-return]


def main() -> None:
    print(f"# graph store, median of {RUNS} runs unless said")
    with embedded_stack() as stack:
        metric_id = store_metric(stack, "window")
        fill(stack.store, metric_id, 100_000, "w")
        stack.store.readings.read_window(metric_id, None, None)  # warm up
        for size, target in ((10_000, 30), (100_000, 500)):
            total, executor = bench_read_window(stack, metric_id, size)
            print(
                f"read_window_{size // 1000}k: {total:.1f} ms "
                f"(cores={CORES}, target <= {target} ms; executor alone {executor:.1f} ms, "
                f"{executor / total:.0%} of it)"
            )
        if stack.store.executor.engine == "falkordb":
            split = page_split(stack, metric_id)
            print(
                f"# a page of {READ_BATCH:,} raw readings: "
                + ", ".join(f"{part} {ms:.1f} ms" for part, ms in split.items())
            )
        compacted = compacted_metric(stack, "compacted", 100_000, 1_000)
        stack.store.readings.read_window(compacted, None, None)  # warm up
        for size, target in ((10_000, 30), (100_000, 500)):
            times = []
            for _ in range(RUNS):
                started = time.perf_counter()
                series = stack.store.readings.read_window(compacted, T0_MS, T0_MS + size * 1000)
                times.append((time.perf_counter() - started) * 1000)
                assert len(series) == size, len(series)
            print(
                f"read_window_compacted_{size // 1000}k: {statistics.median(times):.1f} ms "
                f"(cores={CORES}, target <= {target} ms; 99,000 of the metric's 100,000 "
                "readings in chunks)"
            )

        # Single appends to a small metric while the graph holds more and more readings.
        single = store_metric(stack, "single")
        other = store_metric(stack, "other")
        held = 100_000
        for size in (100_000, 300_000, 500_000):
            fill(stack.store, other, size - held, f"o{size}", T0_MS + held * 1000)
            held = size
            ms = bench_single_append(stack, single, f"s{size}")
            print(
                f"single_append_with_{size // 1000}k_readings_in_graph: {ms:.2f} ms (cores={CORES})"
            )

        memory_metric = store_metric(stack, "memory")
        started = time.perf_counter()
        fill(stack.store, memory_metric, MEMORY_READINGS, "m")
        print(f"# filled {MEMORY_READINGS:,} readings in {time.perf_counter() - started:.0f} s")
        for detect in (False, True):
            try:
                count, baseline, peak, read_s, detect_s = peak_rss(stack, memory_metric, detect)
            except ImportError as exc:  # the detection library may not be there yet
                print(f"# detection not measured: {exc}")
                continue
            what = "read_window+detect_rolling" if detect else "read_window"
            print(
                f"peak_rss_{what}_1M: {peak:.0f} MB (cores={CORES}, target <= 500 MB; "
                f"{count:,} readings, process baseline {baseline:.0f} MB, "
                f"read {read_s:.1f} s, detect {detect_s:.1f} s; one run)"
            )


if __name__ == "__main__":
    main()
