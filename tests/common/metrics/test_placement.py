"""Where new readings go in a chain, decided from keys alone (common.metrics.placement)."""

from __future__ import annotations

from common.metrics.models import NewReading
from common.metrics.placement import (
    RUN_SPAN_MS,
    Gap,
    Run,
    in_chain_order,
    merged,
    runs,
    split_late,
)


def r(reading_id: str, t: int) -> NewReading:
    return NewReading(reading_id, t, 1.0)


def test_chain_order_is_time_then_id_and_the_first_of_an_id_wins() -> None:
    ordered = in_chain_order([r("b", 5), r("a", 5), r("c", 1), r("a", 9)])
    assert [(x.id, x.timestamp_ms) for x in ordered] == [("c", 1), ("a", 5), ("b", 5)]


def test_split_against_the_newest_reading() -> None:
    readings = [r("a", 1), r("m", 5), r("z", 5), r("b", 9)]
    assert split_late(readings, None) == ([], readings)
    late, tail = split_late(readings, (5, "m"))  # the newest is m: sent again, in neither
    assert [x.id for x in late] == ["a"]
    assert [x.id for x in tail] == ["z", "b"]


def test_runs_cut_where_readings_are_far_apart() -> None:
    late = [r("a", 0), r("b", RUN_SPAN_MS), r("c", 3 * RUN_SPAN_MS), r("d", 3 * RUN_SPAN_MS + 1)]
    assert [[x.id for x in run] for run in runs(late)] == [["a", "b"], ["c", "d"]]


def test_a_run_is_placed_after_the_stored_reading_before_each() -> None:
    run = Run.of("m", [r("x", 100), r("y", 150), r("dup", 200), r("z", 300)])
    assert run.start_ms == 100 - RUN_SPAN_MS and run.end_ms == 300
    run.place([(120, "s1"), (200, "dup"), (250, "s2")])
    assert run.duplicates == 1
    assert [x.id for x in run.below] == ["x"]
    assert run.first_stored == (120, "s1")
    placed = {gap.after_id: [x.id for x in gap.readings] for gap in run.gaps}
    assert placed == {"s1": ["y"], "s2": ["z"]}


def test_gaps_between_the_same_neighbours_become_one() -> None:
    gaps = [
        Gap("m", [r("c", 30)], after_id="s"),
        Gap("m", [r("a", 10)], after_id="s"),
        Gap("m", [r("t", 99)], tail=True),
        Gap("other", [r("b", 20)], after_id="s"),
        Gap("m", [], before_id="h"),
    ]
    by_place = {(g.metric_id, g.after_id, g.tail): [x.id for x in g.readings] for g in merged(gaps)}
    assert by_place == {
        ("m", "s", False): ["a", "c"],
        ("m", None, True): ["t"],
        ("other", "s", False): ["b"],
    }
