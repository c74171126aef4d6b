"""The cold start's two paths in one process, without Celery: is a cold sweep's code slower?

    .venv/bin/python tests/bench/cold_start_paths.py [--rounds N]

Per metric with a week of 5-minute readings (bench_fleet's cold metrics), today's
detection job (`run_detection_job`: auto, online) on one metric and a sweep's batch of one
cold metric (`judge_batch`, its lease taken as the sweep takes it) on a twin with the same
readings, one after the other, the order alternating metric by metric; the wall time and
this process's CPU of each, the embedded store's CPU beside it, and the batch's phases. The
same code the worker runs, with the queue, the pool and the sweep's planning left out:
bench_fleet.py's cold start measures those too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from common.epoch import from_epoch_ms, now_ms, utc_now  # noqa: E402
from common.ids import new_id  # noqa: E402
from common.jobs.detection_job import run_detection_job  # noqa: E402
from common.jobs.models import DetectionParams, JobRecord  # noqa: E402
from common.scans.batch import BatchEntry, judge_batch  # noqa: E402
from common.stores import redis_stores  # noqa: E402
from tests.bench.bench_fleet import (  # noqa: E402
    COLD_METRICS,
    COLD_READINGS,
    cold_metrics,
    cpu_seconds,
    phases_per_metric,
)
from tests.bench.stack import embedded_stack  # noqa: E402
from tests.support import settings_for  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help=f"{COLD_METRICS} metrics a round")
    args = parser.parse_args()
    with embedded_stack() as stack:
        settings = settings_for(stack.server, None)
        stores = redis_stores(redis.Redis.from_url(stack.server.redis_url), settings)
        store_pid = stack.server.process.pid  # type: ignore[union-attr]
        service = stack.store.services.create(stack.user_id, "cold", None)
        spent = {"job": [0.0, 0.0, 0.0], "batch": [0.0, 0.0, 0.0]}  # wall, CPU, store CPU
        phases: dict[str, float] = {}

        def job(metric_id: str) -> None:
            record = JobRecord(
                id=new_id(),
                kind="detect",
                owner_id=stack.user_id,
                metric_id=metric_id,
                submitted_at=utc_now(),
                params=DetectionParams(
                    method="auto",
                    online=True,
                    end=from_epoch_ms(now_ms() + 1),
                    max_points=settings.job_max_points,
                ),
            )
            stores.jobs.create(record)
            done = run_detection_job(record.id, stack.store, stores.jobs, stores.results, settings)
            assert done is not None and done.status == "succeeded", done

        def batch(metric_id: str) -> None:
            sweep_id, started = new_id(), now_ms()
            stores.sweeps.start(sweep_id, started, 1, queued=1, pending=0)
            stores.scan_states.claim([metric_id], sweep_id)
            entry = BatchEntry(metric_id, stack.user_id, COLD_READINGS, rebuild=True)
            tally = judge_batch(
                sweep_id,
                started,
                [entry],
                stack.store,
                stores.scan_states,
                stores.sweeps,
                settings,
                "cold_start_paths",
            )
            assert tally.total().metrics == 1, tally
            for name, seconds in tally.phase_seconds.items():
                phases[name] = phases.get(name, 0.0) + seconds

        for number in range(args.rounds):
            jobs_metrics = cold_metrics(stack, service.id, 2 * number)
            batch_metrics = cold_metrics(stack, service.id, 2 * number + 1)
            for k, pair in enumerate(zip(jobs_metrics, batch_metrics, strict=True)):
                ways: list[tuple[str, Callable[[str], None], str]] = [
                    ("job", job, pair[0]),
                    ("batch", batch, pair[1]),
                ]
                for name, run, metric_id in ways if (number + k) % 2 == 0 else ways[::-1]:
                    wall, cpu, store = (
                        time.perf_counter(),
                        time.process_time(),
                        cpu_seconds(store_pid),
                    )
                    run(metric_id)
                    spent[name][0] += time.perf_counter() - wall
                    spent[name][1] += time.process_time() - cpu
                    spent[name][2] += cpu_seconds(store_pid) - store
            print(f"# round {number + 1} done, load {os.getloadavg()[0]:.1f}", flush=True)
        report(spent, phases, args.rounds * COLD_METRICS)
        stores.close()
    return 0


def report(spent: dict[str, list[float]], phases: dict[str, float], n: int) -> None:
    for name, (wall, cpu, store) in spent.items():
        print(
            f"{name}: wall {wall / n * 1000:.1f} ms, CPU {cpu / n * 1000:.1f} ms, store CPU "
            f"{store / n * 1000:.1f} ms a metric ({n} metrics of {COLD_READINGS:,} readings)"
        )
    job, batch = spent["job"], spent["batch"]
    print(
        f"batch / job: wall {batch[0] / job[0]:.2f}, CPU {batch[1] / job[1]:.2f}, "
        f"store CPU {batch[2] / job[2]:.2f} (load average {os.getloadavg()[1]:.1f})"
    )
    print("the batch's phases per metric: " + phases_per_metric(phases, n), flush=True)


if __name__ == "__main__":
    sys.exit(main())
