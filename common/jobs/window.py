"""Which readings a detection job reads: one rule for every way a job is submitted."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WindowRequest:
    """What was asked (epoch ms): `start`..`end`, or `seconds` before `end` (or before now),
    or `seconds` from `start`, or from `start` on; none of them: every reading."""

    start_ms: int | None = None
    end_ms: int | None = None
    seconds: int | None = None


def detection_window(request: WindowRequest, newest_ms: int, now_ms: int) -> tuple[int | None, int]:
    """(start, end) in epoch ms, end exclusive, fixed at submission so that every run of the
    job reads the same readings. `newest_ms` is the timestamp of the metric's newest reading:
    an open end stops just after it.

    An empty window (start at or after end) is not refused here: the job fails saying so.
    """
    if request.end_ms is not None:
        end_ms = request.end_ms
    elif request.seconds is not None and request.start_ms is None:
        end_ms = now_ms  # the seed's meaning: the last N seconds
    else:
        end_ms = newest_ms + 1
    start_ms: int | None = None
    if request.start_ms is not None:
        start_ms = request.start_ms
        if request.seconds is not None and request.end_ms is None:
            end_ms = start_ms + request.seconds * 1000
    elif request.seconds is not None:
        start_ms = end_ms - request.seconds * 1000
    return start_ms, end_ms
