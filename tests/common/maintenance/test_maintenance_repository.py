"""Maintenance windows in the graph, on each engine: scoped to their owner, found for the
metrics they apply to, capped per owner; muted anomalies stored but joining no incident."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

import common.maintenance.repository as maintenance_repository
from common.anomalies.service import muted_in_windows
from common.epoch import now_ms, to_epoch_ms
from common.errors import ConflictError, NotFoundError
from common.graph.params import KeysetPage
from common.incidents.building import build_incidents
from common.maintenance.models import WeeklySchedule, WindowSpec
from common.maintenance.service import create_window
from common.metrics.models import NewReading, ScanMark
from common.settings import Settings
from common.stores import Repositories
from tests.common.repository_support import T0, anomaly_at, make_owner

HOUR = 3_600_000
MINUTE = 60_000


def test_window_crud_is_scoped_to_owner(graph: Repositories) -> None:
    alice, bob = make_owner(graph), make_owner(graph)
    weekly = WeeklySchedule(
        days=["sat", "sun"], start_time=time(2), end_time=time(4, 30), time_zone="Europe/Berlin"
    )
    created = graph.maintenance.create(alice.id, WindowSpec("backups", weekly=weekly), 10)
    assert created.weekly == weekly and created.start is None and created.service_id is None
    assert graph.maintenance.get(alice.id, created.id) == created
    assert graph.maintenance.get(bob.id, created.id) is None
    assert [w.id for w in graph.maintenance.list_owned(alice.id)] == [created.id]
    assert graph.maintenance.list_owned(bob.id) == []
    one_off = WindowSpec("upgrade", start_ms=T0, end_ms=T0 + HOUR)
    assert graph.maintenance.update(bob.id, created.id, one_off) is None
    updated = graph.maintenance.update(alice.id, created.id, one_off)
    assert updated is not None and updated.weekly is None and updated.reason == "upgrade"
    assert updated.updated_at >= created.updated_at
    assert not graph.maintenance.delete(bob.id, created.id)
    assert graph.maintenance.delete(alice.id, created.id)
    assert graph.maintenance.get(alice.id, created.id) is None


def test_windows_of_a_metric_are_its_own_its_services_and_all(graph: Repositories) -> None:
    owner, other = make_owner(graph), make_owner(graph)
    api = graph.services.create(owner.id, "api", None)
    db = graph.services.create(owner.id, "db", None)
    cpu = graph.metrics.create(owner.id, api.id, "cpu", None)
    disk = graph.metrics.create(owner.id, db.id, "disk", None)
    span = {"start_ms": T0, "end_ms": T0 + HOUR}
    mine = {
        name: graph.maintenance.create(owner.id, WindowSpec(name, **target, **span), 10).id  # type: ignore[arg-type]
        for name, target in [
            ("all", {}),
            ("api", {"service_id": api.id}),
            ("cpu", {"metric_id": cpu.id}),
            ("db", {"service_id": db.id}),
            ("disk", {"metric_id": disk.id}),
        ]
    }
    graph.maintenance.create(other.id, WindowSpec("theirs", **span), 10)  # type: ignore[arg-type]
    found = graph.maintenance.of_metric(owner.id, api.id, cpu.id, T0, T0 + 1)
    assert sorted(w.reason for w in found) == ["all", "api", "cpu"]
    assert {w.id for w in found} == {mine["all"], mine["api"], mine["cpu"]}
    # Only those that can cover some of the range.
    assert graph.maintenance.of_metric(owner.id, api.id, cpu.id, T0 + HOUR, T0 + 2 * HOUR) == []
    assert len(graph.maintenance.of_metric(owner.id, api.id, cpu.id, T0 - HOUR, T0 + 1)) == 3


def test_targets_must_be_the_owners_and_windows_are_capped(graph: Repositories) -> None:
    owner, other = make_owner(graph), make_owner(graph)
    theirs = graph.services.create(other.id, "theirs", None)
    their_metric = graph.metrics.create(other.id, theirs.id, "cpu", None)
    span = {"start_ms": T0, "end_ms": T0 + HOUR}
    with pytest.raises(NotFoundError, match=f"service {theirs.id} not found"):
        create_window(graph.maintenance, owner.id, WindowSpec("x", service_id=theirs.id, **span), 5)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match=f"metric {their_metric.id} not found"):
        create_window(
            graph.maintenance,
            owner.id,
            WindowSpec("x", metric_id=their_metric.id, **span),
            5,  # type: ignore[arg-type]
        )
    for _ in range(2):
        create_window(graph.maintenance, owner.id, WindowSpec("x", **span), 2)  # type: ignore[arg-type]
    with pytest.raises(ConflictError, match="you have 2 maintenance windows"):
        create_window(graph.maintenance, owner.id, WindowSpec("x", **span), 2)  # type: ignore[arg-type]
    assert len(graph.maintenance.list_owned(owner.id)) == 2


def test_muted_anomalies_are_stored_but_join_no_incident(
    graph: Repositories, settings: Settings
) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    metric = graph.metrics.create(owner.id, service.id, "cpu", None)
    ref = graph.metrics.get_ref(metric.id)
    assert ref is not None
    base = now_ms() - 10 * MINUTE  # recent: older anomalies are history and make no incident
    ids = ["r0", "r1", "r2"]
    graph.readings.append(
        metric.id, [NewReading(rid, base + i * MINUTE, 9.0) for i, rid in enumerate(ids)]
    )
    graph.maintenance.create(
        owner.id,
        WindowSpec("deploy", start_ms=base, end_ms=base + 2 * MINUTE, metric_id=metric.id),
        10,
    )
    found = [
        anomaly_at(metric.id, rid, timestamp_ms=base + i * MINUTE) for i, rid in enumerate(ids)
    ]
    marked = muted_in_windows(graph.maintenance, ref, found)
    assert [a.muted for a in marked] == [True, True, False]
    graph.anomalies.save(metric.id, marked)
    stored = graph.anomalies.list_page(metric.id, KeysetPage(None, None, 10))
    assert [a.muted for a in stored] == [True, True, False]
    [change] = build_incidents(graph, ref, marked, settings)
    assert change.joined == 1
    # Muted is the graph's word, not the caller's: passed again unmarked, they stay out.
    assert build_incidents(graph, ref, found, settings) == []
    incident = graph.incidents.get(owner.id, change.incident_id)
    assert incident is not None and incident.members == 1


def test_a_weekly_window_made_later_mutes_the_anomalies_already_stored_in_its_spans(
    graph: Repositories,
) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    metric = graph.metrics.create(owner.id, service.id, "cpu", None)
    elsewhere = graph.metrics.create(
        owner.id, graph.services.create(owner.id, "db", None).id, "cpu", None
    )
    first = (now_ms() - 21 * 24 * HOUR) // HOUR * HOUR  # three weeks of hours, to now
    hours = [first + i * HOUR for i in range(21 * 24)]
    for metric_id in (metric.id, elsewhere.id):
        graph.readings.append(metric_id, [NewReading(f"r{t}", t, 9.0) for t in hours])
        graph.anomalies.save(
            metric_id, [anomaly_at(metric_id, f"r{t}", timestamp_ms=t) for t in hours]
        )
    weekly = WeeklySchedule(days=["mon"], start_time=time(0), end_time=time(6), time_zone="UTC")
    create_window(
        graph.maintenance, owner.id, WindowSpec("backup", weekly=weekly, service_id=service.id), 10
    )

    def muted(metric_id: str) -> list[int]:
        stored = graph.anomalies.list_page(metric_id, KeysetPage(None, None, 1000))
        return [to_epoch_ms(a.timestamp) for a in stored if a.muted]

    mondays = [
        t
        for t in hours
        if datetime.fromtimestamp(t / 1000, UTC).weekday() == 0
        and datetime.fromtimestamp(t / 1000, UTC).hour < 6
    ]
    assert len(mondays) == 3 * 6 and muted(metric.id) == mondays
    assert muted(elsewhere.id) == []  # another service's metric


def test_muting_and_relearning_go_in_bounded_batches(
    graph: Repositories, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An owner-wide window over the past marks every judged metric and mutes every stored
    anomaly in it: in statements of WRITE_BATCH (here 4), never one for all of them."""
    monkeypatch.setattr(maintenance_repository, "WRITE_BATCH", 4)
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    first = (now_ms() - 12 * HOUR) // HOUR * HOUR
    hours = [first + i * HOUR for i in range(10)]
    metrics = [graph.metrics.create(owner.id, service.id, f"m{k}", None) for k in range(9)]
    for metric in metrics:
        graph.readings.append(metric.id, [NewReading(f"r{t}", t, 9.0) for t in hours])
        graph.anomalies.save(
            metric.id, [anomaly_at(metric.id, f"r{t}", timestamp_ms=t) for t in hours]
        )
    graph.metrics.save_scan_marks(
        [
            ScanMark(
                metric_id=m.id,
                after_ms=None,
                through_ms=hours[-1],
                judged=len(hours),
                raw=len(hours),
                compacted_through_ms=None,
                late_seq=0,
                appended_at_ms=None,
                lag_ms=None,
                note=None,
            )
            for m in metrics[:7]  # two never judged: nothing to relearn
        ]
    )
    counts: dict[str, list[int]] = {"muted": [], "marked": []}
    write = graph.maintenance.executor.write

    def counted(query: str, params: dict[str, object]) -> list[dict[str, object]]:
        rows = write(query, params)
        for key, seen in counts.items():
            if rows and key in rows[0]:
                seen.append(int(rows[0][key]))  # type: ignore[call-overload]
        return rows

    monkeypatch.setattr(graph.maintenance.executor, "write", counted)
    create_window(
        graph.maintenance,
        owner.id,
        WindowSpec("migration", start_ms=hours[2], end_ms=hours[7]),
        10,
    )
    # 9 x 5 anomalies muted, 7 metrics marked: 4 at most a statement.
    assert counts == {"muted": [4] * 11 + [1], "marked": [4, 3]}
    for metric in metrics:
        stored = graph.anomalies.list_page(metric.id, KeysetPage(None, None, 100))
        assert sorted(to_epoch_ms(a.timestamp) for a in stored if a.muted) == hours[2:7]
    due = {d.id: d.late_from_ms for d in graph.metrics.due_for_scan(2**62, [m.id for m in metrics])}
    assert due == {m.id: (hours[2] if k < 7 else None) for k, m in enumerate(metrics)}
