"""Where the store's time goes in a fleet's sweeps, statement by statement.

    .venv/bin/python tests/bench/sweep_queries.py [--metrics N] [--sweeps K] [--sample N]
        [--profile]

The fleet of bench_fleet.py (N metrics, 240 one-minute readings each, loaded the same way),
on its own embedded server, but every sweep run in this one process, one statement at a
time: the planner (common.scans.sweep.run_sweep), then each of its batches
(common.scans.batch.judge_batch) in turn, each minute's readings appended before it
(`append_many`, as POST /api/readings stores them). Nothing else runs on the server, so the
CPU its threads spend between a statement's start and its answer is that statement's
cost: printed per sweep and per Cypher constant, in CPU seconds per 1,000 metrics judged,
beside the server's persistence (forks, AOF) in that sweep. With --profile, each read's
last call of the first and the last sweep is run again under GRAPH.PROFILE (records and
time per operator), to compare the two.

Not a `bench_*.py` file: `make bench` does not run it; it is the tool to find out why a
sweep costs the store what bench_fleet.py reports.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

import common  # noqa: E402
from common.graph.executors import falkordb_query  # noqa: E402
from common.metrics.models import NewReading  # noqa: E402
from common.scans.batch import BatchEntry, judge_batch  # noqa: E402
from common.scans.sweep import run_sweep  # noqa: E402
from common.stores import redis_stores  # noqa: E402
from tests.bench.bench_fleet import (  # noqa: E402
    HISTORY,
    MINUTE_MS,
    SAMPLE,
    Fleet,
    StoreSnapshot,
    daily,
    load_rest,
    load_sample,
    thread_cpu_seconds,
)
from tests.bench.stack import embedded_stack  # noqa: E402
from tests.support import settings_for  # noqa: E402

APPEND_BATCH = 5000  # metrics a statement, as POST /api/readings takes them


def query_names() -> dict[str, str]:
    """Every Cypher constant of the project's queries modules, by its text."""
    names: dict[str, str] = {}
    for module in pkgutil.walk_packages(common.__path__, "common."):
        if not module.name.endswith(".queries"):
            continue
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if name.isupper() and isinstance(value, str) and not name.startswith("_"):
                names.setdefault(value, name)
    return names


@dataclass
class Cost:
    calls: int = 0
    cpu: float = 0.0  # the server's threads
    wall: float = 0.0  # this process waiting for the answer


@dataclass
class Probe:
    """Wraps the store's executor: each statement's server CPU and wall time, by name."""

    pid: int
    names: dict[str, str]
    costs: dict[str, Cost] = field(default_factory=dict)
    last_params: dict[str, tuple[str, dict[str, Any] | None]] = field(default_factory=dict)

    def wrap(self, call: Callable[..., Any], write: bool) -> Callable[..., Any]:
        def measured(query: str, params: dict[str, Any] | None = None) -> Any:
            name = self.names.get(query, "(unnamed)")
            before = sum(thread_cpu_seconds(self.pid).values())
            began = time.perf_counter()
            try:
                return call(query, params)
            finally:
                wall = time.perf_counter() - began
                cost = self.costs.setdefault(name, Cost())
                cost.calls += 1
                cost.wall += wall
                cost.cpu += sum(thread_cpu_seconds(self.pid).values()) - before
                if not write:
                    self.last_params[name] = (query, params)

        return measured


class CollectedBatches:
    """The sweep's queue: the batches it would send, kept to run here."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, int, list[list[object]]]] = []

    def enqueue_scan_batch(
        self, sweep_id: str, sweep_started_ms: int, entries: list[list[object]]
    ) -> None:
        self.batches.append((sweep_id, sweep_started_ms, entries))


def sweep_here(stack: Any, stores: Any, settings: Any) -> tuple[int, float]:
    """One sweep, its batches run here in turn; metrics judged and seconds."""
    queue = CollectedBatches()
    began = time.perf_counter()
    run_sweep(stack.store, stores.scan_states, stores.sweeps, queue, settings)  # type: ignore[arg-type]
    judged = 0
    for sweep_id, started, entries in queue.batches:
        tally = judge_batch(
            sweep_id,
            started,
            [BatchEntry.of_message(entry) for entry in entries],
            stack.store,
            stores.scan_states,
            stores.sweeps,
            settings,
            "here",
        )
        judged += tally.total().metrics
    return judged, time.perf_counter() - began


def append_minute(stack: Any, fleet: Fleet, minute: int, at_ms: int) -> None:
    usual = float(daily(HISTORY - 1 + minute))
    for first in range(0, len(fleet.metrics), APPEND_BATCH):
        stack.store.readings.append_many(
            {
                m: [NewReading(f"minute-{minute}", at_ms, usual + (hash(m) % 100) / 100)]
                for m in fleet.metrics[first : first + APPEND_BATCH]
            }
        )


def profile(client: redis.Redis, query: str, params: dict[str, Any] | None) -> str:
    # redis-py leaves execute_command untyped: its reply is GRAPH.PROFILE's list of lines.
    lines = client.execute_command(  # type: ignore[no-untyped-call]
        "GRAPH.PROFILE", "neonomaly", falkordb_query(query, params)
    )
    return "\n".join(line.decode() if isinstance(line, bytes) else str(line) for line in lines)


def report(sweep: int, judged: int, seconds: float, probe: Probe, persistence: str) -> None:
    per_k = 1000 / max(judged, 1)
    cpu = sum(cost.cpu for cost in probe.costs.values())
    print(
        f"sweep {sweep}: {judged:,} metrics in {seconds:.1f} s; the store's CPU "
        f"{cpu * per_k:.3f} s per 1,000 metrics",
        flush=True,
    )
    for name, cost in sorted(probe.costs.items(), key=lambda item: -item[1].cpu):
        print(
            f"    {name:28} {cost.calls:5} calls  store CPU {cost.cpu * per_k:.3f} s  "
            f"wall {cost.wall * per_k:.3f} s per 1,000 metrics",
            flush=True,
        )
    print(f"    {persistence}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--sweeps", type=int, default=4)
    parser.add_argument("--sample", type=int, default=SAMPLE)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with embedded_stack(None, {"LOG_LEVEL": "WARNING"}) as stack:
        settings = settings_for(stack.server)
        client = redis.Redis.from_url(stack.server.redis_url)
        stores = redis_stores(client, settings)
        pid = stack.server.process.pid  # type: ignore[union-attr]
        now_ms = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
        first_ms = now_ms - (HISTORY + args.sweeps + 2) * MINUTE_MS
        fleet = Fleet(min(args.sample, args.metrics))
        began = time.perf_counter()
        load_sample(stack, fleet, first_ms)
        judged, seconds = sweep_here(stack, stores, settings)
        print(f"# cold sweep of the sample: {judged:,} metrics in {seconds:.1f} s", flush=True)
        load_rest(stack, client, fleet, args.metrics, first_ms)
        print(
            f"# {len(fleet.metrics):,} metrics stored in {time.perf_counter() - began:.0f} s",
            flush=True,
        )
        executor = stack.store.executor
        names = query_names()
        profiles: dict[int, dict[str, str]] = {}
        for sweep in range(1, args.sweeps + 1):
            append_minute(stack, fleet, sweep, first_ms + (HISTORY - 1 + sweep) * MINUTE_MS)
            probe = Probe(pid, names)
            read, write = executor.read, executor.write
            executor.read = probe.wrap(read, write=False)  # type: ignore[method-assign]
            executor.write = probe.wrap(write, write=True)  # type: ignore[method-assign]
            before = StoreSnapshot.take(pid, client)
            try:
                judged, seconds = sweep_here(stack, stores, settings)
            finally:
                executor.read, executor.write = read, write  # type: ignore[method-assign]
            report(sweep, judged, seconds, probe, StoreSnapshot.take(pid, client).since(before))
            if args.profile and sweep in (1, args.sweeps):
                profiles[sweep] = {
                    name: profile(client, query, params)
                    for name, (query, params) in probe.last_params.items()
                }
        for sweep, found in profiles.items():
            for name, text in found.items():
                print(f"--- GRAPH.PROFILE {name}, sweep {sweep}:\n{text}", flush=True)
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
