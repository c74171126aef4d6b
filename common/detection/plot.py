"""A detection result drawn as a PNG: series, expected value, band, flagged points, events."""

from __future__ import annotations

import io

import numpy as np

from common.detection.result import DetectionResult


def render_png(
    timestamps_ms: np.ndarray, values: np.ndarray, result: DetectionResult, title: str
) -> bytes:
    """The series over time with its band; anomalies as red dots, events shaded red.

    matplotlib is imported here, with the Agg backend, so that importing the detection
    library neither needs matplotlib nor opens a display.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    times = np.asarray(timestamps_ms, dtype="datetime64[ms]")
    series = np.asarray(values, dtype=np.float64)
    # A Figure not registered with pyplot is freed with its last reference (no global
    # state to leak in a long-running web process).
    figure = Figure(figsize=(12, 4.5), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.fill_between(
        times,
        result.lower,
        result.upper,
        color="tab:blue",
        alpha=0.18,
        linewidth=0,
        label="band",
    )
    axes.plot(times, result.expected, color="tab:blue", linewidth=1.2, label="expected")
    # The readings drawn over the expected line: they are what the reader checks.
    axes.plot(times, series, color="0.2", linewidth=0.7, label="value")
    for event in result.events:
        start, end = times[event.start_index], times[event.end_index]
        if start == end:  # widen a one-point event so its shading shows
            step = np.timedelta64(max(1, _median_step_ms(timestamps_ms) // 2), "ms")
            start, end = start - step, end + step
        axes.axvspan(start, end, color="tab:red", alpha=0.2, linewidth=0)
    flagged = np.asarray(result.is_anomaly, dtype=bool)
    axes.scatter(
        times[flagged],
        series[flagged],
        color="tab:red",
        s=14,
        zorder=3,
        label=f"anomaly ({int(flagged.sum())})",
    )
    events = len(result.events)
    heading = f"{title} — {result.method}, {events} event{'' if events == 1 else 's'}"
    # Names are the user's own: "$" in them is text, not the start of matplotlib's math.
    axes.set_title(heading, loc="left", parse_math=False)
    locator = axes.xaxis.get_major_locator()
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.grid(True, color="0.9")
    # Outside the axes, so it never hides a spike at the top of the plot.
    figure.legend(loc="outside upper right", fontsize="small", ncols=4, frameon=False)
    buffer = io.BytesIO()
    # The heading also as the PNG's Title text, for tools (and tests) that read it.
    figure.savefig(buffer, format="png", metadata={"Title": heading})
    return buffer.getvalue()


def _median_step_ms(timestamps_ms: np.ndarray) -> int:
    steps = np.diff(np.asarray(timestamps_ms, dtype=np.int64))
    steps = steps[steps > 0]
    return int(np.median(steps)) if steps.size else 1
