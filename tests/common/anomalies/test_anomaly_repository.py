"""Anomalies in the graph, on each engine: saved idempotently, paged by (timestamp, id)."""

from __future__ import annotations

from common.epoch import to_epoch_ms
from common.graph.params import KeysetPage
from common.stores import Repositories
from tests.common.repository_support import T0, anomaly_at, make_metric, readings


def test_anomalies_are_saved_idempotently(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([1, 2, 3]))
    assert graph.anomalies.save(metric_id, [anomaly_at(metric_id, "r2")], job_id="j1") == 1
    assert graph.anomalies.save(metric_id, [anomaly_at(metric_id, "r2")], job_id="j2") == 1
    graph.anomalies.save(metric_id, [anomaly_at(metric_id, "r2", method="stl")])
    found = graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10))
    assert sorted(a.method for a in found) == ["rolling", "stl"]
    assert {a.reading_id for a in found} == {"r2"}
    # An anomaly for a reading that does not exist is not stored.
    assert graph.anomalies.save(metric_id, [anomaly_at(metric_id, "missing")]) == 0


def test_anomaly_pages_return_each_anomaly_once_in_order(graph: Repositories) -> None:
    """Keyset paging: three readings and two methods share each timestamp, so pages of 7
    split runs of equal timestamps; the window drops the first and last timestamps."""
    _, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings(list(range(30))))
    found = [
        anomaly_at(metric_id, f"r{t}", method, timestamp_ms=T0 + t // 3)
        for t in range(30)
        for method in ("rolling", "stl")
    ]
    graph.anomalies.save(metric_id, found)
    start, end = T0 + 1, T0 + 9
    everything = graph.anomalies.list_page(metric_id, KeysetPage(start, end, 1000))
    assert len(everything) == 48
    assert [(a.timestamp, a.id) for a in everything] == sorted(
        (a.timestamp, a.id) for a in everything
    )
    paged: list[str] = []
    after = None
    for _ in range(10):  # 7 full pages, then an empty one
        page = graph.anomalies.list_page(metric_id, KeysetPage(start, end, 7, after))
        if not page:
            break
        paged += [a.id for a in page]
        after = (to_epoch_ms(page[-1].timestamp), page[-1].id)
    assert paged == [a.id for a in everything]
