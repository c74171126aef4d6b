"""Late readings are spliced between their neighbours, on each engine: the links they replace
are the only ones touched, whatever the length of the chain behind them (issue 21, review
item 7); duplicates never widen a splice; several metrics go in one statement; the chain
stays whole under concurrent late and in-order appends.

Which links a splice replaced is seen by marking every NEXT link first: a link the splice
did not touch keeps its mark.
"""

from __future__ import annotations

import random
import threading

from common.metrics.integrity import check_chain
from common.metrics.models import NewReading
from common.stores import Repositories
from tests.common.repository_support import T0, make_metric, readings

MARK_LINKS = """
MATCH (:MetricReading {metric_id: $metric_id})-[link:NEXT]->()
SET link.before_splice = true
"""
UNMARKED_LINKS = """
MATCH (a:MetricReading {metric_id: $metric_id})-[link:NEXT]->(b)
WHERE link.before_splice IS NULL
RETURN a.id AS from_id, b.id AS to_id
"""


def mark_links(graph: Repositories, metric_id: str) -> None:
    graph.executor.write(MARK_LINKS, {"metric_id": metric_id})


def new_links(graph: Repositories, metric_id: str) -> set[tuple[str, str]]:
    rows = graph.executor.read(UNMARKED_LINKS, {"metric_id": metric_id})
    return {(row["from_id"], row["to_id"]) for row in rows}


def chain_of(graph: Repositories, metric_id: str, count: int) -> None:
    for start in range(0, count, 5_000):
        graph.readings.append(metric_id, readings(list(range(start, min(count, start + 5_000)))))


def test_a_reading_before_the_oldest_links_only_itself(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    chain_of(graph, metric_id, 20_000)
    mark_links(graph, metric_id)
    assert graph.readings.append(metric_id, readings([-5], prefix="early")) == 1
    assert new_links(graph, metric_id) == {("early-5", "r0")}
    report = check_chain(graph.readings, metric_id)
    assert report.ok and report.readings == 20_001, report.problems


def test_late_readings_replace_only_the_links_of_their_gaps(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    chain_of(graph, metric_id, 1_000)  # r0 ... r999, a millisecond apart
    graph.readings.append(
        metric_id, [NewReading(f"s{i}", T0 + 2_000 + i * 10, 1.0) for i in range(3)]
    )
    mark_links(graph, metric_id)
    late = [
        NewReading("a", T0 + 10, 1.0),  # beside r10, and before it: "a" < "r10"
        NewReading("c", T0 + 2_005, 1.0),  # between s0 and s1
        NewReading("d", T0 + 2_006, 1.0),  # the same gap
        NewReading("b", T0 + 500_000, 1.0),  # after the newest, s2
    ]
    assert graph.readings.append(metric_id, late) == 4
    assert new_links(graph, metric_id) == {
        ("r9", "a"),
        ("a", "r10"),
        ("s0", "c"),
        ("c", "d"),
        ("d", "s1"),
        ("s2", "b"),
    }
    report = check_chain(graph.readings, metric_id)
    assert report.ok and report.readings == 1_007, report.problems


def test_resending_an_old_batch_stores_and_relinks_nothing(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    chain_of(graph, metric_id, 5_000)
    mark_links(graph, metric_id)
    assert graph.readings.append(metric_id, readings(list(range(100, 200)))) == 0
    assert new_links(graph, metric_id) == set()


def test_duplicates_beside_a_late_reading_do_not_widen_its_splice(graph: Repositories) -> None:
    # The old statement relinked everything from the batch's earliest timestamp, duplicates
    # included: re-sending an old batch with one new reading cost the whole tail.
    _, metric_id = make_metric(graph)
    chain_of(graph, metric_id, 5_000)
    mark_links(graph, metric_id)
    batch = [*readings(list(range(10, 20))), NewReading("new", T0 + 4000, 1.0)]
    assert graph.readings.append(metric_id, batch) == 1
    assert new_links(graph, metric_id) == {("r3999", "new"), ("new", "r4000")}


def test_a_reused_id_is_a_duplicate_whatever_its_timestamp(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([1, 2, 3]))
    # r2 again, stamped after the newest and before the oldest: stored once, as documented.
    assert graph.readings.append(metric_id, [NewReading("r2", T0 + 10, 5.0)]) == 0
    assert graph.readings.append(metric_id, [NewReading("r2", T0 - 10, 5.0)]) == 0
    assert graph.readings.append(metric_id, [NewReading("r2", T0 + 10, 5.0), *readings([4])]) == 1
    report = check_chain(graph.readings, metric_id)
    assert report.ok and report.readings == 4, report.problems


def test_a_reused_id_in_one_tail_leaves_the_other_metrics_stored_once(
    graph: Repositories,
) -> None:
    # On Neo4j tails are written first without their ids looked up: the uniqueness
    # constraint refuses the reused r1 and the statement runs again with every id looked
    # up. The refused attempt must leave nothing behind, in either metric.
    owner, first = make_metric(graph)
    metric = graph.metrics.get(owner.id, first)
    assert metric is not None
    second = graph.metrics.create(owner.id, metric.service_id, "second", None).id
    graph.readings.append_many({first: readings([1, 2, 3]), second: readings([1, 2, 3])})
    stored = graph.readings.append_many(
        {first: [NewReading("r1", T0 + 10, 9.0), *readings([4, 5])], second: readings([4, 5, 6])}
    )
    assert stored == {first: 2, second: 3}
    for metric_id, count in ((first, 5), (second, 6)):
        report = check_chain(graph.readings, metric_id)
        assert report.ok and report.readings == count, report.problems


def test_many_metrics_in_one_append(graph: Repositories) -> None:
    owner, first = make_metric(graph)
    metric = graph.metrics.get(owner.id, first)
    assert metric is not None
    others = [graph.metrics.create(owner.id, metric.service_id, f"m{i}", None).id for i in range(3)]
    graph.readings.append(others[0], readings([5, 10, 15]))
    batches = {
        first: readings([3, 1, 2]),
        others[0]: readings([7, 10, 20, 0], prefix="r"),  # r10 is stored: a duplicate
        others[1]: [],
        others[2]: readings(list(range(100))),
        "no-such-metric": readings([1]),
    }
    stored = graph.readings.append_many(batches)
    assert stored == {first: 3, others[0]: 3, others[1]: 0, others[2]: 100, "no-such-metric": 0}
    for metric_id in (first, others[0], others[2]):
        report = check_chain(graph.readings, metric_id)
        assert report.ok, report.problems
    assert check_chain(graph.readings, others[0]).readings == 6


def test_a_stale_newest_reading_costs_only_a_second_attempt(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([1, 2, 3]))
    stale = {metric_id: (T0 + 1, "r1")}  # as if read before r2 and r3 arrived
    # "x" looks newest against r1; the write finds r3 newer and leaves it for a second try.
    batch = [NewReading("x", T0 + 2, 1.0), *readings([2, 4])]
    assert graph.readings.append(metric_id, batch, latest=stale) == 2
    report = check_chain(graph.readings, metric_id)
    assert report.ok and report.readings == 5, report.problems
    assert graph.readings.read_window(metric_id, None, None).ids == ["r1", "r2", "x", "r3", "r4"]


def test_concurrent_late_and_in_order_appends_keep_one_chain(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    chain_of(graph, metric_id, 2_000)  # even timestamps below, odd ones arrive late
    errors: list[BaseException] = []

    def in_order(worker: int) -> None:
        try:
            for i in range(30):
                t = 10_000 + i * 4 + worker
                graph.readings.append(metric_id, [NewReading(f"w{worker}-{i}", T0 + t, 1.0)])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def late(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for i in range(30):
                t = rng.randrange(0, 12_000) * 2 + 1
                batch = [NewReading(f"l{worker}-{i}-{k}", T0 + t + 2 * k, 2.0) for k in range(3)]
                graph.readings.append(metric_id, batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=in_order, args=(w,)) for w in range(3)]
    threads += [threading.Thread(target=late, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[0]
    report = check_chain(graph.readings, metric_id)
    assert report.ok, report.problems
    assert report.readings == 2_000 + 3 * 30 + 3 * 30 * 3
