"""Anomalies in the graph, on each engine: one per reading whatever flags it, the strongest
evidence kept, every read with the same fields, paged by (timestamp, id)."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from common.anomalies.models import NewAnomaly
from common.epoch import to_epoch_ms
from common.graph.params import KeysetPage
from common.stores import Repositories
from tests.common.repository_support import T0, anomaly_at, make_metric, readings


def test_anomalies_are_saved_idempotently(graph: Repositories) -> None:
    _, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([1, 2, 3]))
    [first] = graph.anomalies.save(metric_id, [anomaly_at(metric_id, "r2")], job_id="j1")
    [again] = graph.anomalies.save(metric_id, [anomaly_at(metric_id, "r2")], job_id="j2")
    assert again.id == first.id
    [found] = graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10))
    assert (found.id, found.reading_id, found.methods) == (first.id, "r2", ["rolling"])
    assert found.job_id == "j1"  # the same evidence again is not stronger: the first is kept
    # An anomaly for a reading that does not exist is not stored.
    assert graph.anomalies.save(metric_id, [anomaly_at(metric_id, "missing")]) == []


def test_one_anomaly_per_reading_whatever_flags_it(graph: Repositories) -> None:
    """Two methods, a job and a scan: one anomaly, every method listed, the strongest
    evidence kept whole."""
    _, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([1, 2, 3]))

    def finding(method: str, score: float, kind: str) -> NewAnomaly:
        return replace(
            anomaly_at(metric_id, "r2", method), score=score, expected=score, kind=kind,
            summary=f"{kind} by {method}", probability=1 / score, event_start_ms=T0 - 1,
        )  # fmt: skip

    [rolling] = graph.anomalies.save(metric_id, [finding("rolling", 4.0, "spike")], "job")
    [stl] = graph.anomalies.save(metric_id, [finding("stl", 9.0, "level_shift_up")], "job2")
    [scan] = graph.anomalies.save(metric_id, [finding("auto-online", 2.0, "dip")], "scan")
    assert rolling.id == stl.id == scan.id
    [stored] = graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10))
    assert stored.methods == ["rolling", "stl", "auto-online"]
    assert (stored.method, stored.job_id, stored.score, stored.expected) == ("stl", "job2", 9, 9)
    assert (stored.kind, stored.summary) == ("level_shift_up", "level_shift_up by stl")
    assert stored.probability == pytest.approx(1 / 9)
    assert to_epoch_ms(stored.event_start) == T0 - 1
    # One call offering the same reading twice stores it once, with the stronger finding.
    both = [finding("rolling", 3.0, "spike"), finding("rolling", 12.0, "spike")]
    assert len(graph.anomalies.save(metric_id, both, "job3")) == 1
    [stored] = graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10))
    assert (stored.score, stored.job_id) == (12, "job3")
    assert stored.methods == ["rolling", "stl", "auto-online"]


def test_an_anomaly_stored_under_an_id_with_its_method_keeps_that_id(
    graph: Repositories,
) -> None:
    """Ids once held the method; clients may hold such ids. The reading's next finding
    updates that anomaly, under that id, instead of adding one beside it."""
    owner, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([1, 2, 3]))
    legacy_id = hashlib.sha256(f"{metric_id}\x00r2\x00rolling".encode()).hexdigest()[:32]
    graph.executor.write(
        "MATCH (r:MetricReading {metric_id: $metric_id, id: 'r2'}) "
        "CREATE (a:Anomaly {id: $id, metric_id: $metric_id, reading_id: 'r2', timestamp: "
        "r.timestamp, value: 2.0, expected: 1.0, lower: 0.0, upper: 1.5, score: 3.0, "
        "method: 'rolling', event_start: r.timestamp, event_end: r.timestamp, "
        "detected_at: 1, job_id: 'old'})-[:FLAGS]->(r)",
        {"metric_id": metric_id, "id": legacy_id},
    )
    finding = anomaly_at(metric_id, "r2", "stl", timestamp_ms=T0 + 2)  # the reading's time
    [saved] = graph.anomalies.save(metric_id, [finding], "new")
    assert saved.id == legacy_id
    [stored] = graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10))
    assert (stored.id, stored.methods, stored.method) == (legacy_id, ["rolling", "stl"], "stl")
    assert graph.anomalies.get(owner.id, legacy_id) == stored


def test_one_anomaly_answers_every_field_the_lists_answer(graph: Repositories) -> None:
    """GET /api/anomalies/{id} and feedback answered kind, probability and summary as null."""
    owner, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([1, 2, 3]))
    typed = replace(
        anomaly_at(metric_id, "r2"), kind="spike", summary="spike +8 (+4 σ)", probability=1e-5
    )
    [saved] = graph.anomalies.save(metric_id, [typed], "job")
    [listed] = graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10))
    one = graph.anomalies.get(owner.id, saved.id)
    assert one == listed
    assert (listed.kind, listed.summary, listed.probability) == ("spike", "spike +8 (+4 σ)", 1e-5)
    judged = graph.anomalies.set_feedback(owner.id, saved.id, "confirmed")
    assert judged is not None
    assert judged.model_dump(exclude={"feedback", "feedback_at"}) == listed.model_dump(
        exclude={"feedback", "feedback_at"}
    )


def test_anomaly_pages_return_each_anomaly_once_in_order(graph: Repositories) -> None:
    """Keyset paging: six readings share each timestamp, so pages of 7 split runs of
    equal timestamps; the window drops the first and last timestamps."""
    _, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings(list(range(60))))
    found = [anomaly_at(metric_id, f"r{t}", timestamp_ms=T0 + t // 6) for t in range(60)]
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
