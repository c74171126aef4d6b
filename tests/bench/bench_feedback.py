"""Feedback replay (issue 20): `python tests/bench/bench_feedback.py` (not collected by pytest).

Plays a user over the labelled corpora (NAB and the cloud corpus, read at run time from
NEONOMALY_ACCURACY_DIR, default `../shared/accuracy` beside the project; nothing of them is
copied here) who, as soon as the default detector raises an alarm, marks it
`false_positive` if it is outside every labelled window and `confirmed` if inside one.
Each series is judged as a scan would: `advance` piece by piece, each verdict stored as a
`Lesson` and what they teach worked out by `Lessons.of` (common.anomalies.lessons, the
code jobs and sweeps run): the gate applying what the false positives taught, the
confirmed events kept out of what the detector learns. Prints per corpus the
false alarms (alarms outside the windows) and the windows found (at least one alarm in
them), both counted as score.py counts them (after its probation), with feedback and
without, and by name each window found without feedback and lost with it
(`--per-series`: a line per series too).

Target (issue 20): at least a third fewer false alarms with feedback, no window lost.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from common.anomalies.lessons import Lessons  # noqa: E402
from common.anomalies.models import Lesson  # noqa: E402
from common.detect_command import parse_readings  # noqa: E402
from common.detection.adaptive import AdaptiveSettings, advance, new_state  # noqa: E402
from common.detection.gate import gate  # noqa: E402

CORPORA = (("NAB", "windows.json"), ("cloud", "windows-cloud.json"))
# Readings judged ahead in one advance: an alarm makes the replay judge again from it,
# with what the person said (so at most this many readings are judged twice per alarm).
AHEAD = 2000


def accuracy_dir() -> Path:
    return Path(os.environ.get("NEONOMALY_ACCURACY_DIR", ROOT.parent / "shared" / "accuracy"))


def load_score(folder: Path) -> ModuleType:
    """score.py's own counting (its windows, its probation), imported from where it is."""
    spec = importlib.util.spec_from_file_location("accuracy_score", folder / "score.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Series:
    times: np.ndarray
    values: np.ndarray
    stamps: list[str]  # as in the file, for score.py
    windows: list[tuple[int, int]]  # labelled, inclusive indices


def read_series(folder: Path, name: str, labels: list[list[str]], score: ModuleType) -> Series:
    with open(folder / "data" / name, newline="", encoding="utf-8") as stream:
        readings = parse_readings(stream)
    order = np.argsort(readings.timestamps_ms, kind="stable")
    stamps = [readings.timestamps_text[i] for i in order]
    index = {score.moment(text): i for i, text in enumerate(stamps)}
    windows = [(index[score.moment(a)], index[score.moment(b)]) for a, b in labels]
    return Series(readings.timestamps_ms[order], readings.values[order], stamps, windows)


# What the user says: nothing, only false positives, or both verdicts.
MODES = ("without feedback", "false positives only", "with feedback")


def replay(series: Series, mode: str) -> list[int]:
    """The alarms raised (indices) with the user saying what `mode` says."""
    feedback = mode != MODES[0]
    confirms = mode == MODES[2]
    settings = AdaptiveSettings()
    n = series.values.shape[0]
    cadence_ms = int(np.median(np.diff(series.times))) if n > 1 else None
    said: list[Lesson] = []  # the verdicts given so far, as they are stored
    learn = np.ones(n, dtype=bool)
    taught = None
    raised: list[int] = []
    state, at = new_state(settings), 0
    while at < n:
        stop = min(n, at + AHEAD)
        times, values = series.times[at:stop], series.values[at:stop]
        result, after = advance(state, times, values, learn[at:stop])
        judged = gate(result, values, taught=taught)
        flags = np.flatnonzero(judged.is_anomaly) + at
        fresh = flags[flags > raised[-1]] if raised else flags
        if not feedback or fresh.shape[0] == 0:
            raised += fresh.tolist()
            state, at = after, stop
            continue
        alarm = int(fresh[0])
        raised.append(alarm)
        # The person's verdict, given as soon as the alarm is raised, on the anomaly as a
        # sweep stores it: the sweep that raised it saw its event up to the alarm, its
        # newest reading (a job sees more of it). What the verdicts teach is worked out as
        # jobs and sweeps do.
        event = next(e for e in judged.events if e.start_index <= alarm - at <= e.end_index)
        inside = any(start <= alarm <= end for start, end in series.windows)
        if not inside or confirms:
            said.append(
                Lesson(
                    timestamp_ms=int(series.times[alarm]),
                    event_start_ms=int(times[event.start_index]),
                    event_end_ms=int(series.times[alarm]),
                    kind=event.kind.name if event.kind is not None else None,
                    value=float(series.values[alarm]),
                    expected=float(result.expected[alarm - at]),
                    probability=float(result.probability[alarm - at]),
                    feedback="confirmed" if inside else "false_positive",
                    in_open_incident=False,
                )
            )
            lessons = Lessons.of(said, cadence_ms)
            taught = lessons.taught
            mask = lessons.learn(series.times, None)
            learn = np.ones(n, dtype=bool) if mask is None else mask
        # Judge again from the alarm on, with what was said (the alarm's own verdict stays).
        state = advance(state, series.times[at:alarm], series.values[at:alarm], learn[at:alarm])[1]
        at = alarm
    return raised


def counts(series: Series, alarms: list[int], score: ModuleType) -> tuple[int, int]:
    """False alarms and windows found, as score.py counts them."""
    flags = [False] * len(series.stamps)
    for index in alarms:
        flags[index] = True
    labels = [[series.stamps[a], series.stamps[b]] for a, b in series.windows]
    _, _, found = score.score_series(series.stamps, flags, labels)
    return int(found["fp"]), int(found["tp"])


def found_windows(series: Series, alarms: list[int], score: ModuleType) -> list[int]:
    """The labelled windows (their numbers in the labels, from 0) holding an alarm, those
    in score.py's probation left out as it leaves them out."""
    count = len(series.stamps)
    probation = min(math.floor(0.15 * count), 0.15 * 5000)
    raised = np.zeros(count, dtype=bool)
    raised[alarms] = True
    return [
        number
        for number, (start, end) in enumerate(series.windows)
        if start >= probation and raised[start : end + 1].any()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus",
        choices=[name for name, _ in CORPORA],
        action="append",
        help="replay only this corpus (repeat for both; default: both)",
    )
    parser.add_argument(
        "--per-series",
        action="store_true",
        help="a line per series: false alarms (FA) and windows found (W) in each mode",
    )
    arguments = parser.parse_args()
    chosen, per_series = arguments.corpus, arguments.per_series
    folder = accuracy_dir()
    if not (folder / "score.py").exists():
        print(f"feedback replay skipped: no labelled corpora at {folder} (NEONOMALY_ACCURACY_DIR)")
        return
    score = load_score(folder)
    print(f"cores: {os.cpu_count()}, load: {os.getloadavg()[0]:.1f}")
    for corpus, labels_file in CORPORA:
        if chosen and corpus not in chosen:
            continue
        labels = json.loads((folder / labels_file).read_text())
        totals = {mode: np.zeros(2, dtype=np.int64) for mode in MODES}  # false alarms, found
        lost: list[str] = []
        started = time.perf_counter()
        for number, (name, windows) in enumerate(sorted(labels.items()), 1):
            series = read_series(folder, name, windows, score)
            alarms = {mode: replay(series, mode) for mode in MODES}
            found = {mode: counts(series, alarms[mode], score) for mode in MODES}
            for mode in MODES:
                totals[mode] += found[mode]
            # Lost: a window found without feedback that is not found with it (a series
            # can lose one and find another: both are told).
            kept = set(found_windows(series, alarms[MODES[2]], score))
            short = Path(name).stem
            lost += [
                f"{short} #{number}"
                for number in found_windows(series, alarms[MODES[0]], score)
                if number not in kept
            ]
            if per_series:
                print(
                    f"    {short[:48]:48s} "
                    + "  ".join(f"{found[mode][0]:3d} FA {found[mode][1]:2d} W" for mode in MODES),
                    flush=True,
                )
            if number % 10 == 0:
                print(f"  {corpus}: {number}/{len(labels)} series", flush=True)
        fp_without = int(totals[MODES[0]][0])
        print(f"{corpus} ({len(labels)} series, {time.perf_counter() - started:.0f} s):")
        for mode in MODES:
            fp, windows_found = totals[mode].tolist()
            change = fp / fp_without - 1 if fp_without else 0.0
            fewer = f" ({change:+.0%} false alarms)" if mode != MODES[0] else ""
            print(f"  {mode:22s} false alarms {fp:4d}, windows found {windows_found:3d}{fewer}")
        if lost:
            print(
                f"  windows found without feedback, lost with it ({len(lost)}): {'; '.join(lost)}"
            )


if __name__ == "__main__":
    main()
