"""Readings in the graph, on each engine: one ordered chain per metric whatever the order and
concurrency of appends, windows by index range, pages, buckets.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from common.errors import NotFoundError
from common.graph.params import READ_BATCH, KeysetPage
from common.ids import new_id
from common.metrics.integrity import check_chain
from common.metrics.models import NewReading
from common.stores import Repositories
from tests.common.repository_support import T0, make_metric, readings


def test_extreme_values_and_timestamps_read_back(graph: Repositories) -> None:
    owner, metric_id = make_metric(graph)
    # 1970 to 2200 in epoch ms (64-bit), values up to the API's 1e308, subnormal, -0.0.
    values = [1e308, -1e308, 5e-324, -0.0, 0.1, float(2**53 + 2), 123456.789012345]
    last_ms = 7_258_118_399_999  # 2199-12-31T23:59:59.999Z
    stamps = [0, 1, 2**31, 2**32 + 1, 1_700_000_000_000, last_ms - 1, last_ms]
    graph.readings.append(
        metric_id,
        [
            NewReading(id=f"x{i}", timestamp_ms=t, value=v)
            for i, (t, v) in enumerate(zip(stamps, values, strict=True))
        ],
    )
    window = graph.readings.read_window(metric_id, None, None)
    assert window.timestamps_ms.tolist() == stamps
    # FalkorDB replies with 15 significant digits; Neo4j's Bolt floats are exact.
    for got, sent in zip(window.values.tolist(), values, strict=True):
        assert math.isclose(got, sent, rel_tol=1e-14, abs_tol=0.0) or got == sent == 0.0
    metric = graph.metrics.get(owner.id, metric_id)
    assert metric is not None and metric.latest_reading is not None
    assert metric.latest_reading.timestamp == datetime(2199, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def test_in_order_appends_form_one_chain(graph: Repositories) -> None:
    owner, metric_id = make_metric(graph)
    assert graph.readings.append(metric_id, readings([1, 2, 3])) == 3
    assert graph.readings.append(metric_id, readings([4])) == 1
    report = check_chain(graph.readings, metric_id)
    assert report.ok, report.problems
    assert report.readings == report.linked == 4
    metric = graph.metrics.get(owner.id, metric_id)
    assert metric is not None and metric.latest_reading is not None
    assert metric.latest_reading.id == "r4"


def test_shuffled_readings_end_up_as_one_ordered_chain(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    order = list(range(100))
    random.Random(7).shuffle(order)
    for t in order:
        graph.readings.append(metric_id, readings([t]))
    report = check_chain(graph.readings, metric_id)
    assert report.ok, report.problems
    assert report.readings == 100
    window = graph.readings.read_window(metric_id, None, None)
    assert list(window.timestamps_ms) == [T0 + t for t in range(100)]


def test_late_batch_is_spliced_in_place(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings(list(range(0, 100, 10))))
    graph.readings.append(metric_id, readings([55, 5, 95, 200, 0], prefix="late"))
    report = check_chain(graph.readings, metric_id)
    assert report.ok, report.problems
    assert report.readings == 15


def test_resent_ids_are_stored_once(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    batch = readings(list(range(50)))
    assert graph.readings.append(metric_id, batch) == 50
    assert graph.readings.append(metric_id, batch) == 0
    assert graph.readings.append(metric_id, batch[:3] + readings([99])) == 1
    # A repeat inside one batch: the first one wins.
    twice = [NewReading("dup", T0 + 500, 1.0), NewReading("dup", T0 + 600, 2.0)]
    assert graph.readings.append(metric_id, twice) == 1
    report = check_chain(graph.readings, metric_id)
    assert report.ok and report.readings == 52


def test_same_timestamp_readings_are_kept_and_ordered_by_id(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    graph.readings.append(metric_id, [NewReading("b", T0, 1.0), NewReading("c", T0, 2.0)])
    graph.readings.append(metric_id, [NewReading("a", T0, 0.0)])
    assert graph.readings.read_window(metric_id, None, None).ids == ["a", "b", "c"]
    assert check_chain(graph.readings, metric_id).ok


def test_read_window_is_a_time_range(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings(list(range(100))))
    window = graph.readings.read_window(metric_id, T0 + 10, T0 + 20)
    assert list(window.timestamps_ms) == [T0 + t for t in range(10, 20)]
    assert list(window.values) == [float(t) for t in range(10, 20)]
    newest = graph.readings.read_window(metric_id, None, None, limit=5, newest=True)
    assert list(newest.timestamps_ms) == [T0 + t for t in range(95, 100)]


def test_list_readings_pages_without_gaps_or_repeats(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    graph.readings.append(
        metric_id, [NewReading(f"id{i:03}", T0 + i // 3, float(i)) for i in range(30)]
    )
    seen: list[str] = []
    after = None
    while True:
        page = graph.readings.list_page(metric_id, KeysetPage(None, None, 7, after))
        if not page:
            break
        seen += page.ids
        assert list(page.values) == [float(seen.index(i)) for i in page.ids]
        after = (int(page.timestamps_ms[-1]), page.ids[-1])
    assert seen == [f"id{i:03}" for i in range(30)]


def test_first_timestamp_of_a_window(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    assert graph.readings.first_timestamp(metric_id, None, None) is None
    graph.readings.append(metric_id, [NewReading(f"r{i}", T0 + i, float(i)) for i in range(10)])
    assert graph.readings.first_timestamp(metric_id, None, None) == T0
    assert graph.readings.first_timestamp(metric_id, T0 + 2, T0 + 5) == T0 + 2
    assert graph.readings.first_timestamp(metric_id, T0 + 20, None) is None


def test_window_buckets_keep_each_buckets_extremes(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    values = [1.0, 2.0, 3.0, 50.0, 5.0, 6.0, -7.0, 8.0, 9.0, 10.0]
    graph.readings.append(
        metric_id, [NewReading(f"r{i}", T0 + i * 10, v) for i, v in enumerate(values)]
    )
    # Buckets of 30 ms from T0 + 10: [10, 40) [40, 70) [70, 100); bucket 3 is empty.
    buckets = graph.readings.window_buckets(metric_id, T0 + 10, T0 + 130, 30)
    assert list(buckets.index) == [0, 1, 2]
    assert list(buckets.low) == [2.0, -7.0, 8.0]
    assert list(buckets.high) == [50.0, 6.0, 10.0]
    assert list(buckets.readings) == [3, 3, 3]


def test_concurrent_appends_to_one_metric_keep_one_chain(graph: Repositories) -> None:
    """The metric's write lock (Neo4j) / one writer per graph (FalkorDB) prevents forks."""
    _, metric_id = make_metric(graph)
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for i in range(25):
                t = i * 8 + worker  # interleaved across writers
                graph.readings.append(metric_id, [NewReading(f"w{worker}-{i}", T0 + t, 1.0)])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    report = check_chain(graph.readings, metric_id)
    assert report.ok, report.problems
    assert report.readings == 200


def test_concurrent_appends_to_one_metric_queue_without_deadlocks(
    graph: Repositories, caplog: pytest.LogCaptureFixture
) -> None:
    # Neo4j reports a wait for a node that the waiting transaction's holder then links
    # (LATEST_READING) as a deadlock; the driver retries it, but under load those retries
    # made appends time out. Appends must queue on their lock, not fail and retry.
    _, metric_id = make_metric(graph)
    graph.readings.append(metric_id, [NewReading("first", T0 - 1, 0.0)])
    start = threading.Barrier(8)

    def writer(worker: int) -> None:
        start.wait(timeout=30)
        for i in range(30):
            graph.readings.append(
                metric_id, [NewReading(f"w{worker}-{i}", T0 + i * 8 + worker, 1.0)]
            )

    with caplog.at_level(logging.WARNING, logger="neo4j"), ThreadPoolExecutor(8) as pool:
        list(pool.map(writer, range(8)))
    retried = [r.getMessage()[:300] for r in caplog.records if "DeadlockDetected" in r.getMessage()]
    assert not retried, f"{len(retried)} appends were refused as deadlocks, first: {retried[0]}"
    report = check_chain(graph.readings, metric_id)
    assert report.ok and report.readings == 241, report.problems


def test_unknown_metric_append_stores_nothing(graph: Repositories) -> None:
    metric_id = new_id()
    with pytest.raises(NotFoundError):
        graph.readings.append(metric_id, readings([1]))
    assert len(graph.readings.read_window(metric_id, None, None)) == 0


def test_a_window_longer_than_a_read_batch_is_read_whole_in_order(graph: Repositories) -> None:
    """Windows are read READ_BATCH readings per statement (a huge reply holds the embedded
    server for everyone); runs of equal timestamps straddle the page boundaries."""
    _, metric_id = make_metric(graph)
    count = 2 * READ_BATCH + 500
    stored = [NewReading(f"r{i:06}", T0 + i // 3, float(i)) for i in range(count)]
    for first in range(0, count, 10_000):
        graph.readings.append(metric_id, stored[first : first + 10_000])
    everything = graph.readings.read_window(metric_id, None, None)
    assert everything.ids == [r.id for r in stored]
    assert everything.timestamps_ms.tolist() == [r.timestamp_ms for r in stored]
    newest = graph.readings.read_window(metric_id, T0 + 1, None, limit=READ_BATCH + 7, newest=True)
    assert newest.ids == [r.id for r in stored[-(READ_BATCH + 7) :]]
    oldest = graph.readings.read_window(metric_id, T0 + 1, T0 + 5000, limit=READ_BATCH + 7)
    assert oldest.ids == [r.id for r in stored[3 : 3 + READ_BATCH + 7]]
