"""What people's verdicts teach a metric's detector, and what it must not learn from.

Recomputed from the stored verdicts each time a metric is judged (a job, a sweep's
batch), so a verdict withdrawn or changed simply drops out:

- `false_positive`: the anomaly's kind, side (up or down) and deviation from the
  expected value (in the metric's units and relative to the expected value) go into the
  gate's `Taught` record; a later event of that kind and side that deviates no further,
  by both, is judged normal (common.detection.gate). The detector's state does
  not change: verdicts and state stay a function of the readings alone.
- `confirmed`, or in an open incident: the readings of its event are judged but not learnt
  from (the default detector's `learn` mask: an outage does not widen the band or move
  the level). An event is kept out from its start to its stored end, and at least its
  alarm and the KEPT_OUT_READINGS after it, the detector's quiet time (a sweep stores an
  event as far as it has seen it, often its alarm alone); an open incident's anomalies
  keep their metric's readings out from their start until the incident is resolved.
- Readings in one of the metric's maintenance windows are not learnt from either (a window
  made, changed or deleted over readings sweeps judged marks the metric for a rebuild:
  common.maintenance.service).

Bounded: a metric's newest LESSONS_PER_METRIC (common.anomalies.models) anomalies with
a verdict or in an open incident count (one read per job, one per sweep batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.anomalies.models import Lesson
from common.detection.gate import FalsePositive, Taught, relative_of, side_of
from common.detection.state import AdaptiveSettings

# An alarm's event, if nothing longer was stored: the default detector's quiet time, the
# readings after an alarm within which it raises no second one. The alarms a long outage
# raises (one a quiet time), each confirmed, keep all of it out; no longer, so that the
# readings after a short incident are learnt again (50, before, kept 15 more out: in the
# feedback replay 2 more false alarms on each corpus, one more window lost on the cloud
# corpus's; BENCHMARKS.md, "Feedback").
KEPT_OUT_READINGS = AdaptiveSettings().quiet
OPEN_ENDED = 2**62


@dataclass(frozen=True)
class Lessons:
    """A metric's lessons, ready for the detector."""

    taught: Taught | None
    # Inclusive [start, end] epoch-ms spans whose readings are not learnt from; an
    # open-ended one (OPEN_ENDED) lasts until the incident is resolved.
    kept_out: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, lessons: Sequence[Lesson], cadence_ms: int | None) -> Lessons:
        false_positives = [
            FalsePositive(
                lesson.kind,
                side_of(lesson.value, lesson.expected),
                abs(lesson.value - lesson.expected),
                relative_of(lesson.value, lesson.expected),
                lesson.event_start_ms,
            )
            for lesson in lessons
            if lesson.feedback == "false_positive"
        ]
        least = KEPT_OUT_READINGS * (cadence_ms or 0)
        spans = []
        for lesson in lessons:
            if lesson.in_open_incident and lesson.feedback != "false_positive":
                spans.append((lesson.event_start_ms, OPEN_ENDED))
            elif lesson.feedback == "confirmed":
                end = max(lesson.event_end_ms, lesson.event_start_ms + least)
                spans.append((lesson.event_start_ms, end))
        return cls(Taught.of(false_positives), tuple(sorted(spans)))

    def learn(self, timestamps_ms: np.ndarray, in_windows: np.ndarray | None) -> np.ndarray | None:
        """Per reading, whether the detector may learn from it (None: from every one).
        `in_windows`: whether each reading is in one of the metric's maintenance windows."""
        times = np.asarray(timestamps_ms, dtype=np.int64)
        kept_out = np.zeros(times.shape[0], dtype=bool)
        if in_windows is not None:
            kept_out |= in_windows
        for start, end in self.kept_out:
            low = int(np.searchsorted(times, start, side="left"))
            kept_out[low : int(np.searchsorted(times, end, side="right"))] = True
        return None if not kept_out.any() else ~kept_out
