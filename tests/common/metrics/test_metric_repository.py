"""Metrics in the graph, on each engine: names unique per service, scoped to the owner."""

from __future__ import annotations

import time

import pytest

from common.edits import NameEdit
from common.epoch import now_ms
from common.errors import ConflictError, NotFoundError
from common.metrics.compaction import MaintenanceReport, compact_metric
from common.metrics.models import CompactionTarget, ScanMark
from common.stores import Repositories
from tests.common.repository_support import T0, make_metric, make_owner, readings

FAR = T0 + 10**9  # a horizon after every reading


def test_duplicate_metric_name_in_service_conflicts(graph: Repositories) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    graph.metrics.create(owner.id, service.id, "cpu", None)
    with pytest.raises(ConflictError):
        graph.metrics.create(owner.id, service.id, "cpu", "again")
    other = graph.services.create(owner.id, "db", None)
    graph.metrics.create(owner.id, other.id, "cpu", None)  # same name, other service: fine
    assert len(graph.metrics.list_in_service(owner.id, service.id)) == 1


def test_metric_in_someone_elses_service_is_not_found(graph: Repositories) -> None:
    alice, bob = make_owner(graph), make_owner(graph)
    service = graph.services.create(alice.id, "api", None)
    with pytest.raises(NotFoundError):
        graph.metrics.create(bob.id, service.id, "cpu", None)


def test_rename_metric_onto_taken_name_conflicts(graph: Repositories) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    graph.metrics.create(owner.id, service.id, "cpu", None)
    mem = graph.metrics.create(owner.id, service.id, "mem", None)
    with pytest.raises(ConflictError):
        graph.metrics.update(owner.id, mem.id, NameEdit(name="cpu"))
    renamed = graph.metrics.update(
        owner.id, mem.id, NameEdit(name="memory", description="rss", set_description=True)
    )
    assert renamed is not None and (renamed.name, renamed.description) == ("memory", "rss")


def test_delete_metric_removes_its_readings(graph: Repositories) -> None:
    owner, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([1, 2, 3]))
    assert graph.metrics.delete(owner.id, metric_id)
    assert graph.metrics.get(owner.id, metric_id) is None
    assert len(graph.readings.read_window(metric_id, None, None)) == 0


def test_metrics_due_for_scan_appended_since_or_named(graph: Repositories) -> None:
    owner, metric_id = make_metric(graph)
    _, quiet_id = make_metric(graph)
    graph.readings.append(quiet_id, readings([5]))
    before = now_ms()
    graph.readings.append(metric_id, readings([1]))
    due = {m.id: m for m in graph.metrics.due_for_scan(before)}
    assert metric_id in due and quiet_id not in due
    assert due[metric_id].owner_id == owner.id and due[metric_id].latest_ms == T0 + 1
    assert due[metric_id].judged_through_ms is None and due[metric_id].late_from_ms is None
    a_year_later = now_ms() + 366 * 24 * 3600 * 1000
    assert {m.id for m in graph.metrics.due_for_scan(a_year_later, [quiet_id])} == {quiet_id}


def mark(
    metric_id: str, after: int, through: int, judged: int, late_seq: int = 0, seen: int = 0
) -> ScanMark:
    """A scan's mark, its times counted from T0 as the readings' are; `seen`: the metric's
    last append as the scan read it (0: one older than any, so its readings are counted)."""
    return ScanMark(
        metric_id=metric_id,
        after_ms=T0 + after,
        through_ms=T0 + through,
        judged=judged,
        raw=judged,
        compacted_through_ms=None,
        late_seq=late_seq,
        appended_at_ms=seen,
        lag_ms=1500,
        note=None,
    )


def test_an_append_at_or_before_the_newest_judged_is_late(graph: Repositories) -> None:
    owner, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([10, 20, 30]))
    graph.metrics.save_scan_marks([mark(metric_id, 9, 30, 3)])
    metric = graph.metrics.get(owner.id, metric_id)
    assert metric is not None and metric.judged_through is not None
    assert metric.last_judged_at is not None and metric.scan_lag_seconds == 1.5

    graph.readings.append(metric_id, readings([40], prefix="new"))  # after: not late
    [due] = [m for m in graph.metrics.due_for_scan(None) if m.id == metric_id]
    assert (due.judged_through_ms, due.late_from_ms) == (T0 + 30, None)
    graph.readings.append(metric_id, readings([25, 15], prefix="late"))  # two gaps: two marks
    graph.readings.append(metric_id, readings([30], prefix="same"))  # at it: late too
    graph.readings.append(metric_id, readings([25], prefix="late"))  # stored: no mark
    [read] = graph.readings.read_for_scan({metric_id: owner.id}, FAR, 100)
    assert (read.late_from_ms, read.late_seq) == (T0 + 15, 3)
    assert read.readings.ids == ["new40"]  # only what follows the newest judged

    # A scan that judged with late_seq 2 seen: another late gap came since, keep it.
    graph.metrics.save_scan_marks([mark(metric_id, 14, 40, 6, late_seq=2)])
    [read] = graph.readings.read_for_scan({metric_id: owner.id}, FAR, 100)
    assert read.late_from_ms == T0 + 15
    graph.metrics.save_scan_marks([mark(metric_id, 14, 40, 6, late_seq=3)])
    [read] = graph.readings.read_for_scan({metric_id: owner.id}, FAR, 100)
    assert read.late_from_ms is None and read.judged_through_ms == T0 + 40


def test_scan_marks_see_a_reading_that_arrived_unseen(graph: Repositories) -> None:
    owner, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([10, 20, 30]))
    [read] = graph.readings.read_for_scan({metric_id: owner.id}, FAR, 100)
    graph.metrics.save_scan_marks([mark(metric_id, 9, 30, 3, seen=read.appended_at_ms or 0)])
    [read] = graph.readings.read_for_scan({metric_id: owner.id}, FAR, 100)
    assert read.judged_through_ms == T0 + 30 and read.late_from_ms is None
    # A batch reads 40; a reading at 35 is appended before the batch writes its marks (not
    # late for the append: 30 was the newest judged then). The marks count it: late.
    graph.readings.append(metric_id, readings([40], prefix="b"))
    [read] = graph.readings.read_for_scan({metric_id: owner.id}, FAR, 100)
    assert read.readings.ids == ["b40"]
    time.sleep(0.005)  # the appends' server times differ
    graph.readings.append(metric_id, readings([35], prefix="c"))
    graph.metrics.save_scan_marks([mark(metric_id, 30, 40, 1, seen=read.appended_at_ms or 0)])
    [read] = graph.readings.read_for_scan({metric_id: owner.id}, FAR, 100)
    assert read.judged_through_ms == T0 + 40 and read.late_from_ms == T0 + 31


def test_scan_reads_cap_and_order_each_metric(graph: Repositories) -> None:
    _, judged_id = make_metric(graph)
    _, fresh_id = make_metric(graph)
    graph.readings.append(judged_id, readings([50, 10, 40, 20, 30, 60, 10**9]))
    graph.readings.append(fresh_id, readings([1, 2, 3]))
    graph.metrics.save_scan_marks([mark(judged_id, 0, 20, 2)])
    owners = {judged_id: "a", fresh_id: "b", "gone": "c"}
    reads = {r.metric.id: r for r in graph.readings.read_for_scan(owners, T0 + 10**6, 2)}
    assert set(reads) == {judged_id, fresh_id}  # a metric that does not exist is left out
    assert reads[judged_id].readings.timestamps_ms.tolist() == [
        T0 + 30,
        T0 + 40,
    ]  # the oldest 2 after 20
    assert reads[judged_id].latest_ms == T0 + 10**9
    assert len(reads[fresh_id].readings) == 0  # never judged: read as history instead
    windows = [(judged_id, T0 + 20), (fresh_id, T0)]
    histories = graph.readings.read_history_for_scan(windows, T0 + 10**6, 3)
    assert histories[judged_id].timestamps_ms.tolist() == [
        T0 + 40,
        T0 + 50,
        T0 + 60,
    ]  # the newest 3
    assert histories[fresh_id].ids == ["r1", "r2", "r3"]
    assert graph.readings.count_for_scan(windows, T0 + 10**6, 4) == {judged_id: 4, fresh_id: 3}


def test_scan_marks_see_a_reading_merged_into_a_chunk_unseen(graph: Repositories) -> None:
    owner, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([10, 20, 30, 40, 50, 60]))
    graph.metrics.save_scan_marks([mark(metric_id, 9, 20, 2)])
    # Scans stopped longer than the raw window: 30 and 40 were compacted unjudged.
    report = MaintenanceReport()
    target = CompactionTarget(metric_id, graph.readings.boundary(metric_id), T0 + 60)
    compact_metric(graph.readings, target, T0 + 50, report)
    assert report.compacted > 0 and graph.readings.boundary(metric_id) == T0 + 50
    # A batch reads the metric (and rebuilds it from the chunks and the raw window); a late
    # reading at 35, after the newest judged (20) but before the boundary, is merged into a
    # chunk before the batch writes its marks.
    [read] = graph.readings.read_for_scan({metric_id: owner.id}, FAR, 100)
    assert read.judged_through_ms == T0 + 20 and read.compacted_through_ms == T0 + 50
    time.sleep(0.005)  # the appends' server times differ
    assert graph.readings.append(metric_id, readings([35], prefix="late")) == 1
    assert graph.readings.boundary(metric_id) == T0 + 50  # merged: not a raw reading
    judged = ScanMark(
        metric_id=metric_id,
        after_ms=T0 + 9,
        through_ms=T0 + 60,
        judged=6,
        raw=2,
        compacted_through_ms=T0 + 50,
        late_seq=read.late_seq,
        appended_at_ms=read.appended_at_ms,
        lag_ms=None,
        note=None,
    )
    graph.metrics.save_scan_marks([judged])
    # The marks' count of raw readings cannot see it: the merge itself marks the metric late
    # from just after the newest judged then, so the next sweep judges it in a rebuild.
    [read] = graph.readings.read_for_scan({metric_id: owner.id}, FAR, 100)
    assert read.judged_through_ms == T0 + 60 and read.late_from_ms == T0 + 21


def test_scan_marks_see_an_unseen_reading_a_compaction_hid(graph: Repositories) -> None:
    owner, metric_id = make_metric(graph)
    graph.readings.append(metric_id, readings([10, 20, 30, 40, 50, 60]))
    graph.metrics.save_scan_marks([mark(metric_id, 9, 20, 2)])
    # A batch reads 30..60, all raw; before it writes its marks a compaction moves 30 into
    # a chunk and a reading at 45 arrives (after the newest judged: not late for the append).
    [read] = graph.readings.read_for_scan({metric_id: owner.id}, FAR, 100)
    assert read.readings.ids == ["r30", "r40", "r50", "r60"] and read.compacted_through_ms is None
    report = MaintenanceReport()
    target = CompactionTarget(metric_id, None, T0 + 60)
    compact_metric(graph.readings, target, T0 + 40, report)
    assert report.compacted > 0 and graph.readings.boundary(metric_id) == T0 + 40
    time.sleep(0.005)  # the appends' server times differ
    assert graph.readings.append(metric_id, readings([45], prefix="c")) == 1
    judged = ScanMark(
        metric_id=metric_id,
        after_ms=T0 + 20,
        through_ms=T0 + 60,
        judged=4,
        raw=4,
        compacted_through_ms=None,
        late_seq=read.late_seq,
        appended_at_ms=read.appended_at_ms,
        lag_ms=None,
        note=None,
    )
    graph.metrics.save_scan_marks([judged])
    # Raw readings in (20, 60] are 4 again (30 went, 45 came): the count alone cannot tell.
    [read] = graph.readings.read_for_scan({metric_id: owner.id}, FAR, 100)
    assert read.judged_through_ms == T0 + 60 and read.late_from_ms == T0 + 21
