"""What an owner's maintenance windows cost a sweep's batch, a metric judged.

    .venv/bin/python tests/bench/bench_windows_covered.py [WINDOWS ...]    (or `make bench`)

A batch asks, for each metric, which of its readings the windows that apply to it cover
(common.maintenance.service.covered: not learnt from). For each count of windows (default
10, 100 and 1,000: MAINTENANCE_WINDOWS_MAX), all of one owner's and weekly in a named zone,
100 metrics of that owner as one batch asks for them: with their new readings (one each,
a sweep's usual case) and with a week of 5-minute readings (a rebuild). Prints the
milliseconds a metric, to set beside the 0.4-0.5 ms of worker CPU a sweep spends on a
metric with one new reading (README, Sizing workers for a fleet). No store needed.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from datetime import time as clock
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[2])]

from common.epoch import to_epoch_ms  # noqa: E402
from common.maintenance.models import WEEKDAYS, MaintenanceWindow, WeeklySchedule  # noqa: E402
from common.maintenance.service import covered, schedules  # noqa: E402

COUNTS = (10, 100, 1_000)
METRICS = 100
DAY_MS = 86_400_000


def windows(count: int) -> list[MaintenanceWindow]:
    moment = datetime.now(UTC)
    return [
        MaintenanceWindow(
            id=f"w{k}", service_id=None, metric_id=None, start=None, end=None,
            weekly=WeeklySchedule(
                days=list(WEEKDAYS[: 1 + k % 7]), start_time=clock(k % 24, 0),
                end_time=clock((k + 1) % 24, 30), time_zone="Europe/Berlin",
            ),
            reason="bench", created_at=moment, updated_at=moment,
        )
        for k in range(count)
    ]  # fmt: skip


def main() -> None:
    now = to_epoch_ms(datetime.now(UTC))
    for count in [int(arg) for arg in sys.argv[1:]] or COUNTS:
        owned = windows(count)
        for label, first in (("new_reading", now - 60_000), ("week_of_history", now - 7 * DAY_MS)):
            # Each metric's call working out the windows' schedules, and the batch's way
            # (BatchLessons: once for the metrics sharing the windows), in turn.
            for way, once in (("each_metric", False), ("once_a_batch", True)):
                started = time.perf_counter()
                whens = schedules(owned) if once else None
                for k in range(METRICS):  # the owner's metrics of one batch, a little apart
                    covered(owned, np.arange(first + k * 1000, now, 300_000), whens)
                seconds = (time.perf_counter() - started) / METRICS
                print(
                    f"windows_covered_{count}_windows_{label}_{way}: {1000 * seconds:.2f} ms "
                    f"a metric ({METRICS} metrics)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
