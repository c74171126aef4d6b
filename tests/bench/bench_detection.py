"""Detection benchmarks: `python tests/bench/bench_detection.py` (not collected by pytest).

Prints one figure per line, medians of several runs, with the machine's core count.
Targets: STL on 10,000 points at period 288 (R-style jumps) <= 60 ms; rolling
mean/std and median/MAD on 1,000,000 points <= 150 ms each. The default detector (auto)
on 10,000 points is printed next to them (the corpus of ~100k points must take < 2 min).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from common.detection import detect
from common.detection.stl import StlSettings, decompose
from common.methods import MethodSettings

RUNS = 7


def median_ms(work: Callable[[], object], runs: int = RUNS) -> float:
    work()  # warm up (imports, caches)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    print(f"cores: {os.cpu_count()}")

    t = np.arange(10_000)
    seasonal_series = 10 * np.sin(2 * np.pi * t / 288) + 0.001 * t + rng.normal(0, 1, t.shape[0])
    r_style = StlSettings(period=288, robust=False)
    every_point = StlSettings(period=288, robust=False, r_jumps=False)
    jumps_ms = median_ms(lambda: decompose(seasonal_series, r_style))
    default_ms = median_ms(lambda: decompose(seasonal_series, every_point), runs=3)
    s1, t1 = decompose(seasonal_series, r_style)
    s2, t2 = decompose(seasonal_series, every_point)
    print(f"stl_10k_p288_jumps_ms: {jumps_ms:.1f} (median of {RUNS})")
    print(f"stl_10k_p288_no_jumps_ms: {default_ms:.1f} (median of 3)")
    print(f"stl_10k_p288_speedup: {default_ms / jumps_ms:.1f}x")
    print(f"stl_10k_p288_max_fit_difference: {np.abs((s1 + t1) - (s2 + t2)).max():.4f}")
    robust = StlSettings(period=288, robust=True)
    print(
        f"stl_10k_p288_robust_jumps_ms: "
        f"{median_ms(lambda: decompose(seasonal_series, robust)):.1f} (median of {RUNS})"
    )
    stl = MethodSettings(method="stl", period=288)
    print(
        f"detect_stl_10k_ms: {median_ms(lambda: detect(seasonal_series, None, stl)):.1f} "
        f"(median of {RUNS}, with scoring)"
    )
    online_ms = median_ms(
        lambda: detect(
            seasonal_series, None, MethodSettings(method="stl", period=288, online=True)
        ),
        runs=3,
    )
    print(f"detect_stl_online_10k_ms: {online_ms:.1f} (median of 3, block 48, history 1152)")
    # The default detector judges causally: online STL once the season is learnt, plus the
    # level forecaster and six tail fits per 16 readings.
    auto_ms = median_ms(lambda: detect(seasonal_series), runs=3)
    print(f"detect_auto_10k_seasonal_ms: {auto_ms:.1f} (median of 3)")
    noise_ms = median_ms(lambda: detect(rng.normal(0, 1, 10_000)), runs=3)
    print(f"detect_auto_10k_noise_ms: {noise_ms:.1f} (median of 3, no season)")

    million = rng.normal(0, 1, 1_000_000)
    for robust_rolling, name in ((False, "mean_std"), (True, "median_mad")):
        for online in (False, True):
            mode = "online" if online else "offline"
            settings = MethodSettings(
                method="rolling", window=60, robust=robust_rolling, online=online
            )
            ms = median_ms(partial(detect, million, None, settings))
            print(f"rolling_{name}_1m_w60_{mode}_ms: {ms:.1f} (median of {RUNS}, with scoring)")


if __name__ == "__main__":
    main()
