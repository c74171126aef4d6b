"""What verdicts teach a metric's detector: read from the graph on each engine (verdicts,
open incidents, withdrawn verdicts), and turned into the gate's record and the learning
mask (common.anomalies.lessons)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from common.anomalies.lessons import KEPT_OUT_READINGS, Lessons
from common.anomalies.models import Lesson
from common.detection import detect
from common.detection.adaptive import AdaptiveSettings, judge
from common.detection.gate import Bar, Taught
from common.epoch import to_epoch_ms
from common.incidents.building import build_incidents
from common.methods import MethodSettings
from common.settings import Settings
from common.stores import Repositories
from tests.common.detection.test_gate import SMALL_SPIKE, series
from tests.common.incidents.test_building import Owner

MINUTE = 60_000


def test_verdicts_and_open_incidents_are_what_a_metric_learns_from(
    graph: Repositories, settings: Settings
) -> None:
    owner = Owner(graph)
    metric = owner.metric("api", "latency")
    quiet = owner.metric("api", "errors")
    found = owner.anomalies(metric, [0, 1, 2, 3])
    ids = {a.reading_id: a.id for a in found}
    user = owner.user.id
    assert graph.anomalies.lessons([metric.id, quiet.id]) == {}  # no verdict, no incident
    graph.anomalies.set_feedback(user, ids["r0"], "false_positive")
    graph.anomalies.set_feedback(user, ids["r1"], "confirmed")
    graph.anomalies.set_feedback(user, ids["r2"], "confirmed")
    graph.anomalies.clear_feedback(user, ids["r2"])  # withdrawn: as if never said
    lessons = graph.anomalies.lessons([metric.id, quiet.id])
    assert list(lessons) == [metric.id]
    said = {(lesson.timestamp_ms, lesson.feedback) for lesson in lessons[metric.id]}
    start = to_epoch_ms(owner.t0)
    assert said == {(start, "false_positive"), (start + MINUTE, "confirmed")}
    assert not any(lesson.in_open_incident for lesson in lessons[metric.id])
    # Newest first, at most `limit`.
    [newest] = graph.anomalies.lessons([metric.id], limit=1)[metric.id]
    assert newest.timestamp_ms == start + MINUTE

    # In an open incident: every member is a lesson, verdict or not.
    build_incidents(graph, metric, found, settings)
    in_incident = graph.anomalies.lessons([metric.id])[metric.id]
    assert len(in_incident) == 4 and all(lesson.in_open_incident for lesson in in_incident)


def lesson(minute: int, feedback: str | None, open_: bool = False, **fields: object) -> Lesson:
    at = minute * MINUTE
    values: dict[str, object] = {
        "timestamp_ms": at,
        "event_start_ms": at,
        "event_end_ms": at + 2 * MINUTE,
        "kind": "spike",
        "value": 9.0,
        "expected": 1.0,
        "probability": 1e-6,
        "feedback": feedback,
        "in_open_incident": open_,
    }
    values.update(fields)
    return Lesson(**values)  # type: ignore[arg-type]


def test_false_positives_teach_the_gate_the_largest_deviation_per_kind_and_side() -> None:
    lessons = Lessons.of(
        [
            lesson(1, "false_positive"),
            lesson(2, "false_positive", value=13.0),
            lesson(3, "false_positive", value=-5.0),
            lesson(4, "confirmed", value=50.0),
            lesson(5, "false_positive", kind="level_shift_up", value=3.0),
            lesson(6, "false_positive", value=-3.0),
            lesson(7, "false_positive", kind="level_shift_up", value=2.0),
            lesson(8, "false_positive", kind="dip", value=-9.0),  # once: teaches nothing yet
        ],
        MINUTE,
    )
    # The farthest in the metric's units and relative to the expected value (1.0 here).
    assert lessons.taught == Taught(
        {
            ("spike", "up"): Bar(12.0, 12.0),
            ("spike", "down"): Bar(6.0, 6.0),
            ("level_shift_up", "up"): Bar(2.0, 2.0),
        }
    )
    assert Lessons.of([lesson(1, "confirmed")], MINUTE).taught is None
    assert Lessons.of([lesson(1, "false_positive")], MINUTE).taught is None


def test_a_false_positive_teaches_its_size_relative_to_the_level_it_left() -> None:
    # Two spikes of +9 called normal on a level of 400 (2 %): a spike of +8 on a level of
    # 100 (8 %) is not what was called normal, and still alarms; called normal on a level
    # of 100, it is normal.
    values = series()
    plain = detect(values, None, MethodSettings())
    assert any(e.start_index == SMALL_SPIKE for e in plain.events)
    for level, alarms in ((400.0, True), (100.0, False)):
        said = [
            lesson(minute, "false_positive", value=level + 9.0, expected=level) for minute in (1, 2)
        ]
        taught = Lessons.of(said, MINUTE).taught
        judged = detect(values, None, MethodSettings(), taught=taught)
        assert any(e.start_index == SMALL_SPIKE for e in judged.events) is alarms
        assert bool(judged.is_anomaly[SMALL_SPIKE]) is alarms


def test_confirmed_events_open_incidents_and_windows_are_kept_out() -> None:
    times = np.arange(0, 400 * MINUTE, MINUTE, dtype=np.int64)
    assert Lessons.of([lesson(10, "false_positive")], MINUTE).learn(times, None) is None
    confirmed = Lessons.of([lesson(10, "confirmed")], MINUTE).learn(times, None)
    assert confirmed is not None
    # From the event's start, for at least the quiet time (its stored end is sooner).
    assert np.flatnonzero(~confirmed).tolist() == list(range(10, 10 + KEPT_OUT_READINGS + 1))
    long_event = lesson(10, "confirmed", event_end_ms=200 * MINUTE)
    assert (~Lessons.of([long_event], MINUTE).learn(times, None)).sum() == 191
    # An open incident keeps out everything from its member's start on; a window its span.
    incident = Lessons.of([lesson(300, None, open_=True)], MINUTE).learn(times, None)
    assert incident is not None and np.flatnonzero(~incident).tolist() == list(range(300, 400))
    windows = np.zeros(400, dtype=bool)
    windows[50:60] = True
    both = Lessons.of([lesson(300, None, open_=True)], MINUTE).learn(times, windows)
    assert both is not None and (~both).sum() == 110
    assert windows.sum() == 10  # the caller's array is not changed


def test_a_confirmed_outage_is_kept_out_alarm_by_alarm_and_what_follows_it_is_learnt() -> None:
    """A sweep stores an alarm's event as far as it has seen it, often the alarm alone. A
    long outage raises an alarm each quiet time; each one confirmed keeps out the outage's
    readings up to the next, and the readings after its last quiet time are learnt again."""
    rng = np.random.default_rng(3)
    values = rng.normal(100.0, 1.0, 1400)
    outage = slice(800, 900)
    values[outage] += 12.0 + rng.normal(0.0, 6.0, 100)
    times = np.arange(values.shape[0], dtype=np.int64) * MINUTE
    said: list[Lesson] = []
    learn = None
    while True:  # the person confirms each alarm of the outage as it is raised
        result = judge(values, times, AdaptiveSettings(), learn=learn)
        alarms = [int(i) for i in np.flatnonzero(result.is_anomaly) if outage.start <= i]
        fresh = [
            i
            for i in alarms
            if i < outage.stop and all(i != s.timestamp_ms // MINUTE for s in said)
        ]
        if not fresh:
            break
        at = fresh[0] * MINUTE
        said.append(lesson(fresh[0], "confirmed", event_start_ms=at, event_end_ms=at))
        learn = Lessons.of(said, MINUTE).learn(times, None)
    quiet = AdaptiveSettings().quiet
    confirmed = sorted(s.timestamp_ms // MINUTE for s in said)
    assert confirmed[0] == outage.start and len(confirmed) >= 2
    # One alarm a quiet time: confirmed, they keep out every reading of the outage...
    assert all(b - a == quiet + 1 for a, b in pairwise(confirmed))
    assert learn is not None and not learn[outage].any()
    # ...and no reading after the last one's quiet time.
    kept_out = np.flatnonzero(~learn)
    assert kept_out.tolist() == list(range(outage.start, confirmed[-1] + quiet + 1))
    # Nothing after the outage alarms: the band it would have widened is not needed.
    assert not result.is_anomaly[confirmed[-1] + quiet + 1 :].any()
