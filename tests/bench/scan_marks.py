"""What SAVE_SCAN_MARKS, a sweep's batch write of how far each metric was judged, costs the
store, against the form it had before, side by side.

    .venv/bin/python tests/bench/scan_marks.py [--metrics K] [--batches N] [--profile]

On its own embedded server with the project's schema: K metrics, each with its newest
reading stamped at T (a fleet's readings of one minute share their timestamp) and
judged up to the minute before; then N batches of 500 marks (a batch's metrics, as a
steady sweep writes them: one reading judged each, nothing late, no note) written by the
statement of `common.metrics.queries` and by its earlier form (BEFORE, below), in turns, so
that a neighbour's burst on the shared cores falls on both. Printed: the CPU of the
server's threads per 1,000 marks, each form, three times, and the ratio of the sums.
--profile adds GRAPH.PROFILE of one batch of each. Not a `bench_*.py` file: `make bench`
does not run it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from common.graph.executors import falkordb_query  # noqa: E402
from common.graph.params import MIN_MS  # noqa: E402
from common.metrics import queries as q  # noqa: E402
from tests.bench.bench_fleet import thread_cpu_seconds  # noqa: E402
from tests.bench.stack import embedded_stack  # noqa: E402

T = 1_700_000_040_000
MINUTE_MS = 60_000
LOAD_BATCH = 4000
BATCH = 500  # metrics a batch (SCAN_BATCH_METRICS)
APPENDED_AT = 1_700_000_050_000

LOAD = """
UNWIND range($first, $last) AS i
CREATE (:Metric {id: 'm-' + toString(i), name: 'cpu', judged_through: $t - 60000,
                 last_append_at: $appended, late_seq: 0, judged_at: $t, scan_lag_ms: 1000}),
       (:MetricReading {metric_id: 'm-' + toString(i), id: 'r-' + toString(i),
                        timestamp: $t, value: 1.0})
"""

# SAVE_SCAN_MARKS as it was before issue 22's sweeps6 branch (2026-12-07, at 38141e3).
BEFORE = """
UNWIND $marks AS k
MATCH (m:Metric {id: k.id})
SET m.judged_through = k.through, m.scan_note = k.note,
    m.judged_at = CASE WHEN k.judged > 0 THEN $now ELSE m.judged_at END,
    m.scan_lag_ms = CASE WHEN k.judged > 0 THEN k.lag_ms ELSE m.scan_lag_ms END
WITH m, k
CALL {
  WITH m, k
  WITH m, k
  WHERE m.last_append_at <> k.appended_at
  OPTIONAL MATCH (r:MetricReading)
  WHERE r.metric_id = k.id AND r.timestamp >= k.after + 1 AND r.timestamp <= k.through
  RETURN count(r) AS present
}
SET m.late_from = CASE
  WHEN present > k.raw
       OR (m.last_append_at <> k.appended_at
           AND coalesce(m.compacted_through, $min) <> coalesce(k.compacted_through, $min)) THEN
    CASE WHEN m.late_from IS NULL OR m.late_from > k.after + 1 THEN k.after + 1
         ELSE m.late_from END
  WHEN coalesce(m.late_seq, 0) = k.late_seq THEN null
  ELSE m.late_from END
RETURN count(m) AS marked
"""


def marks(first: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"m-{i}",
            "after": T - MINUTE_MS,
            "through": T,
            "judged": 1,
            "raw": 1,
            "compacted_through": None,
            "late_seq": 0,
            "appended_at": APPENDED_AT,
            "lag_ms": 1000,
            "note": None,
        }
        for i in range(first, first + BATCH)
    ]


def params_of(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """As MetricRepository.save_scan_marks sends them to FalkorDB (BEFORE ignores lock)."""
    return {"marks": batch, "now": int(time.time() * 1000), "min": MIN_MS, "lock": False}


def server_cpu(pid: int) -> float:
    return sum(thread_cpu_seconds(pid).values())


def write(client: redis.Redis, query: str, params: dict[str, Any]) -> Any:
    # redis-py leaves execute_command untyped.
    return client.execute_command(  # type: ignore[no-untyped-call]
        "GRAPH.QUERY", "neonomaly", falkordb_query(query, params)
    )


def cpu_per_thousand(client: redis.Redis, pid: int, query: str, k: int, batches: int) -> float:
    """The server's CPU per 1,000 marks, over `batches` batches spread over the K metrics."""
    before = server_cpu(pid)
    for n in range(batches):
        first = (n * BATCH) % (k - BATCH + 1)
        write(client, query, params_of(marks(first)))
    return (server_cpu(pid) - before) / (batches * BATCH) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    k = args.metrics
    with embedded_stack(None, {"LOG_LEVEL": "WARNING"}) as stack:
        client = redis.Redis.from_url(stack.server.redis_url)
        pid = stack.server.process.pid  # type: ignore[union-attr]
        for first in range(0, k, LOAD_BATCH):
            last = min(first + LOAD_BATCH, k) - 1
            write(client, LOAD, {"first": first, "last": last, "t": T, "appended": APPENDED_AT})
        print(f"K = {k:,} metrics; {args.batches} batches of {BATCH} marks a form", flush=True)
        forms = {"before": BEFORE, "SAVE_SCAN_MARKS": q.SAVE_SCAN_MARKS}
        figures: dict[str, list[float]] = {name: [] for name in forms}
        for _ in range(3):
            for name, query in forms.items():
                figures[name].append(cpu_per_thousand(client, pid, query, k, args.batches))
        for name, seen in figures.items():
            print(
                f"    {name:16} "
                + " / ".join(f"{cpu:.4f}" for cpu in seen)
                + " s of the server's CPU per 1,000 marks",
                flush=True,
            )
        ratio = sum(figures["SAVE_SCAN_MARKS"]) / sum(figures["before"])
        print(f"    now / before: {ratio:.2f}", flush=True)
        if args.profile:
            for name, query in forms.items():
                lines = client.execute_command(  # type: ignore[no-untyped-call]
                    "GRAPH.PROFILE", "neonomaly", falkordb_query(query, params_of(marks(0)))
                )
                text = "\n".join(
                    line.decode() if isinstance(line, bytes) else str(line) for line in lines
                )
                print(f"--- GRAPH.PROFILE {name}:\n{text}", flush=True)
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
