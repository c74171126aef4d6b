"""A steady metric's detector work in a sweep, without the rest: decode its state, advance
it over one new reading, encode it; µs of this process's CPU each (median of 5 passes over
50 states built from 240 one-minute readings, bench_fleet's history: CPU, not wall time, so
that a loaded machine's waits stay out).

    .venv/bin/python tests/bench/steady_metric_costs.py [LABEL]

Imports `common` from the first entry of PYTHONPATH that has it, so two trees can be
compared side by side in turns, e.g. against an older commit's `common/`:

    git archive 3ded654 common | tar -x -C /tmp/old
    for i in 1 2; do
      PYTHONPATH=/tmp/old .venv/bin/python tests/bench/steady_metric_costs.py old
      PYTHONPATH=. .venv/bin/python tests/bench/steady_metric_costs.py new
    done
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from common.detection.adaptive import AdaptiveSettings, advance, new_state
from common.detection.state import DetectorState

HISTORY = 240  # as bench_fleet's fleet
STATES = 50
PASSES = 5
ROUNDS = 20  # over the states, per pass


def history(count: int, seed: int) -> np.ndarray:
    """bench_fleet's: a daily sine around 50 and noise."""
    rng = np.random.default_rng(seed)
    return 50 + 10 * np.sin(2 * np.pi * np.arange(count) / 1440) + rng.normal(0, 1, count)


def main() -> int:
    label = sys.argv[1] if len(sys.argv) > 1 else "this tree"
    settings = AdaptiveSettings()
    states = []
    for seed in range(STATES):
        values = history(HISTORY + 1, seed)
        times = np.arange(HISTORY + 1, dtype=np.int64) * 60_000
        _, state = advance(new_state(settings), times[:HISTORY], values[:HISTORY])
        states.append((state.to_bytes(), times[HISTORY:], values[HISTORY:]))
    runs: dict[str, list[float]] = {"decode": [], "advance": [], "encode": []}
    for _ in range(PASSES):
        spent = dict.fromkeys(runs, 0.0)
        for _ in range(ROUNDS):
            for data, times, values in states:
                began = time.process_time()
                state = DetectorState.from_bytes(data, settings=settings)
                decoded = time.process_time()
                _, after = advance(state, times, values)
                advanced = time.process_time()
                after.to_bytes()
                encoded = time.process_time()
                spent["decode"] += decoded - began
                spent["advance"] += advanced - decoded
                spent["encode"] += encoded - advanced
        for name, seconds in spent.items():
            runs[name].append(seconds / (ROUNDS * STATES) * 1e6)
    size = statistics.mean(len(data) for data, _, _ in states)
    print(
        f"{label}: state {size:,.0f} bytes; "
        + ", ".join(f"{name} {statistics.median(us):.0f} us" for name, us in runs.items()),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
