"""What a strict timestamp bound costs FalkorDB's index scan when a fleet shares a timestamp.

    .venv/bin/python tests/bench/strict_bounds.py [--metrics K ...] [--lookups N]

On its own embedded server with the project's schema: K metrics, each with one reading, one
anomaly and one chunk stamped at the same time T (a fleet's readings of one minute share
their timestamp), then N lookups of single metrics, each bound written strict (`< T`,
`> T`) and as the inclusive bound on the neighbouring millisecond (`<= T - 1`, `>= T + 1`:
the same rows, times being whole milliseconds). Printed: the CPU of the server's query
threads per lookup, in microseconds, strict and inclusive side by side, twice. The strict
forms walk every entry stamped at the bound across all metrics (issue 22): their cost grows
with K, the inclusive ones' does not. Not a `bench_*.py` file: `make bench` does not run it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from common.graph.executors import falkordb_query  # noqa: E402
from tests.bench.bench_fleet import thread_cpu_seconds  # noqa: E402
from tests.bench.stack import embedded_stack  # noqa: E402

T = 1_700_000_040_000
LOAD_BATCH = 4000

LOAD = """
UNWIND range($first, $last) AS i
CREATE (:MetricReading {metric_id: 'probe-' + toString(i), id: 'r-' + toString(i),
                        timestamp: $t, value: 1.0}),
       (:Anomaly {id: 'a-' + toString(i), metric_id: 'probe-' + toString(i), timestamp: $t}),
       (:ReadingChunk {id: 'c-' + toString(i), metric_id: 'probe-' + toString(i),
                       first_timestamp: $t, last_timestamp: $t})
"""

# (what, strict form, inclusive form): one metric's lookup, bound at T, as the project's
# queries write them (READ_WINDOW, DELETE_RAW_BEFORE / REPLACE_CHUNKS, SCAN_READ_NEW,
# LIST_ANOMALIES / MUTE_IN_SPANS, CHUNKS_OVERLAPPING).
PAIRS = [
    (
        "reading  >= start AND < end",
        "MATCH (r:MetricReading) WHERE r.metric_id = $m AND r.timestamp >= $t - 60000 "
        "AND r.timestamp < $t RETURN count(r)",
        "MATCH (r:MetricReading) WHERE r.metric_id = $m AND r.timestamp >= $t - 60000 "
        "AND r.timestamp <= $t - 1 RETURN count(r)",
    ),
    (
        "reading  < cutoff",
        "MATCH (r:MetricReading) WHERE r.metric_id = $m AND r.timestamp < $t RETURN count(r)",
        "MATCH (r:MetricReading) WHERE r.metric_id = $m AND r.timestamp <= $t - 1 RETURN count(r)",
    ),
    (
        "reading  > after",
        "MATCH (r:MetricReading) WHERE r.metric_id = $m AND r.timestamp > $t RETURN count(r)",
        "MATCH (r:MetricReading) WHERE r.metric_id = $m AND r.timestamp >= $t + 1 RETURN count(r)",
    ),
    (
        "anomaly  >= start AND < end",
        "MATCH (a:Anomaly) WHERE a.metric_id = $m AND a.timestamp >= $t - 60000 "
        "AND a.timestamp < $t RETURN count(a)",
        "MATCH (a:Anomaly) WHERE a.metric_id = $m AND a.timestamp >= $t - 60000 "
        "AND a.timestamp <= $t - 1 RETURN count(a)",
    ),
    (
        "chunk    first < end",
        "MATCH (c:ReadingChunk) WHERE c.metric_id = $m AND c.first_timestamp < $t "
        "AND c.last_timestamp >= $t - 60000 RETURN count(c)",
        "MATCH (c:ReadingChunk) WHERE c.metric_id = $m AND c.first_timestamp <= $t - 1 "
        "AND c.last_timestamp >= $t - 60000 RETURN count(c)",
    ),
]


def query_cpu(pid: int) -> float:
    """CPU seconds of FalkorDB's query threads (the main thread's parsing and replies, some
    50 us a lookup here, are left out: they do not depend on the bound)."""
    cpu = thread_cpu_seconds(pid)
    return sum(seconds for name, seconds in cpu.items() if name.startswith("thread-pool"))


def cpu_per_lookup(client: redis.Redis, pid: int, query: str, k: int, lookups: int) -> float:
    """Query threads' CPU per lookup, in microseconds, over `lookups` metrics spread over k."""
    step = max(k // lookups, 1)
    before = query_cpu(pid)
    for n in range(lookups):
        params = {"m": f"probe-{(n * step) % k}", "t": T}
        # redis-py leaves execute_command untyped.
        client.execute_command(  # type: ignore[no-untyped-call]
            "GRAPH.RO_QUERY", "neonomaly", falkordb_query(query, params)
        )
    return (query_cpu(pid) - before) / lookups * 1e6


def probe(k: int, lookups: int) -> None:
    with embedded_stack(None, {"LOG_LEVEL": "WARNING"}) as stack:
        client = redis.Redis.from_url(stack.server.redis_url)
        pid = stack.server.process.pid  # type: ignore[union-attr]
        for first in range(0, k, LOAD_BATCH):
            last = min(first + LOAD_BATCH, k) - 1
            client.execute_command(  # type: ignore[no-untyped-call]
                "GRAPH.QUERY",
                "neonomaly",
                falkordb_query(LOAD, {"first": first, "last": last, "t": T}),
            )
        print(f"K = {k:,} metrics stamped at one time; {lookups} lookups each", flush=True)
        for what, strict, inclusive in PAIRS:
            # Side by side, twice, so that a neighbour's burst on the shared cores shows.
            figures = [
                cpu_per_lookup(client, pid, query, k, lookups)
                for query in (strict, inclusive, strict, inclusive)
            ]
            print(
                f"    {what:28} strict {figures[0]:8.1f} / {figures[2]:8.1f} us   "
                f"inclusive {figures[1]:6.1f} / {figures[3]:6.1f} us",
                flush=True,
            )
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=int, nargs="+", default=[8_000, 32_000])
    parser.add_argument("--lookups", type=int, default=1000)
    args = parser.parse_args()
    for k in args.metrics:
        probe(k, args.lookups)
    return 0


if __name__ == "__main__":
    sys.exit(main())
