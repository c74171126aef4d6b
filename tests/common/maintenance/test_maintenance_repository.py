"""Maintenance windows in the graph, on each engine: scoped to their owner, found for the
metrics they apply to, capped per owner; muted anomalies stored but joining no incident."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time

import pytest

import common.maintenance.repository as maintenance_repository
from common.anomalies.service import muted_in_windows
from common.epoch import now_ms, to_epoch_ms
from common.errors import ConflictError, NotFoundError
from common.graph.params import KeysetPage
from common.incidents.building import build_incidents
from common.incidents.detail import incident_detail, incident_summaries
from common.incidents.recording import record_anomalies
from common.maintenance import queries as maintenance_queries
from common.maintenance import reach
from common.maintenance.models import WeeklySchedule, WindowSpec
from common.maintenance.reach import apply_reach, requeue_pending
from common.maintenance.repository import MaintenanceRepository
from common.maintenance.service import create_window, delete_window, update_window
from common.metrics.models import NewReading, ScanMark
from common.settings import Settings
from common.stores import Repositories
from common.users.models import User
from tests.common.repository_support import T0, anomaly_at, make_metric, make_owner
from tests.support import unique_name

HOUR = 3_600_000
MINUTE = 60_000


def held_by_no_sweep(metric_ids: Sequence[str]) -> set[str]:
    """No sweep's batch holds any metric (ScanStates.held, with no sweep running)."""
    return set()


class ReachNow:
    """A reach queue whose task runs as soon as it is queued, in this process (as the
    worker's `neonomaly.window-reach` runs it), so that a test reads what it did."""

    def __init__(self, repository: MaintenanceRepository):
        self.repository = repository

    def enqueue_window_reach(self, window_id: str) -> None:
        apply_reach(self.repository, window_id, held_by_no_sweep, now_ms())


class ReachLost:
    """A reach queue whose tasks are lost (a worker died holding them): it keeps their ids."""

    def __init__(self) -> None:
        self.lost: list[str] = []

    def enqueue_window_reach(self, window_id: str) -> None:
        self.lost.append(window_id)


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

    def hour(service_id: str | None = None, metric_id: str | None = None) -> WindowSpec:
        return WindowSpec(
            "x", start_ms=T0, end_ms=T0 + HOUR, service_id=service_id, metric_id=metric_id
        )

    reach_now = ReachNow(graph.maintenance)
    with pytest.raises(NotFoundError, match=f"service {theirs.id} not found"):
        create_window(
            graph.maintenance,
            reach_now,
            owner.id,
            hour(service_id=theirs.id),
            5,
        )
    with pytest.raises(NotFoundError, match=f"metric {their_metric.id} not found"):
        create_window(
            graph.maintenance,
            reach_now,
            owner.id,
            hour(metric_id=their_metric.id),
            5,
        )
    for _ in range(2):
        create_window(graph.maintenance, reach_now, owner.id, hour(), 2)
    with pytest.raises(ConflictError, match="you have 2 maintenance windows"):
        create_window(graph.maintenance, reach_now, owner.id, hour(), 2)
    assert len(graph.maintenance.list_owned(owner.id)) == 2


def test_muted_anomalies_are_stored_but_join_no_incident(
    graph: Repositories, settings: Settings
) -> None:
    owner, metric_id = make_metric(graph)
    ref = graph.metrics.get_ref(metric_id)
    assert ref is not None
    base = now_ms() - 10 * MINUTE  # recent: older anomalies are history and make no incident
    ids = ["r0", "r1", "r2"]
    graph.readings.append(
        metric_id, [NewReading(rid, base + i * MINUTE, 9.0) for i, rid in enumerate(ids)]
    )
    graph.maintenance.create(
        owner.id,
        WindowSpec("deploy", start_ms=base, end_ms=base + 2 * MINUTE, metric_id=metric_id),
        10,
    )
    found = [
        anomaly_at(metric_id, rid, timestamp_ms=base + i * MINUTE) for i, rid in enumerate(ids)
    ]
    marked = muted_in_windows(graph.maintenance, ref, found)
    assert [a.muted for a in marked] == [True, True, False]
    graph.anomalies.save(metric_id, marked)
    stored = graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10))
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
        graph.maintenance,
        ReachNow(graph.maintenance),
        owner.id,
        WindowSpec("backup", weekly=weekly, service_id=service.id),
        10,
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
    # Two never judged: nothing to relearn.
    judged_through(graph, [m.id for m in metrics[:7]], hours[-1], judged=len(hours))
    counts: dict[str, list[int]] = {"muted": [], "marked": []}
    write = graph.maintenance.executor.write

    def counted(query: str, params: dict[str, object]) -> list[dict[str, object]]:
        rows = write(query, params)
        for key, seen in counts.items():
            if rows and key in rows[0]:
                seen.append(int(rows[0][key]))
        return rows

    monkeypatch.setattr(graph.maintenance.executor, "write", counted)
    create_window(
        graph.maintenance,
        ReachNow(graph.maintenance),
        owner.id,
        WindowSpec("migration", start_ms=hours[2], end_ms=hours[7]),
        10,
    )
    # 9 x 5 anomalies muted, 4 metrics and 4 anomalies at most a statement (a statement
    # names the metrics of one batch: their 20 anomalies, then the next 4 metrics'...);
    # the 9 metrics named to the relearn, 4 a statement (a batch may hold any of them), of
    # which the 7 judged are marked.
    assert sum(counts["muted"]) == 45 and max(counts["muted"]) == 4
    assert len(counts["marked"]) == 3 and sum(counts["marked"]) == 7
    for metric in metrics:
        stored = graph.anomalies.list_page(metric.id, KeysetPage(None, None, 100))
        assert sorted(to_epoch_ms(a.timestamp) for a in stored if a.muted) == hours[2:7]
    due = {d.id: d.late_from_ms for d in graph.metrics.due_for_scan(2**62, [m.id for m in metrics])}
    assert due == {m.id: (hours[2] if k < 7 else None) for k, m in enumerate(metrics)}


def test_muting_a_dense_range_walks_each_anomaly_a_few_times_not_once_a_statement(
    graph: Repositories, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Muting N anomalies takes N / WRITE_BATCH statements or so; each walks the anomalies
    of its time range, muted ones included (they stay in the index range). Repeated over
    the window's whole range, the statements walked N each (N * N / WRITE_BATCH in all:
    40,000 anomalies held the single writer 0.4 s a statement); each statement over its
    own slice, halved where a batch is full, walks each anomaly a few times."""
    monkeypatch.setattr(maintenance_repository, "WRITE_BATCH", 4)
    owner, metric_id = make_metric(graph)
    first = now_ms() - 200 * MINUTE
    times = [first + i * MINUTE for i in range(128)]
    graph.readings.append(metric_id, [NewReading(f"r{t}", t, 9.0) for t in times])
    graph.anomalies.save(metric_id, [anomaly_at(metric_id, f"r{t}", timestamp_ms=t) for t in times])
    ranges: list[tuple[int, int]] = []
    write = graph.maintenance.executor.write

    def seen(query: str, params: dict[str, object]) -> list[dict[str, object]]:
        if query == maintenance_repository.q.MUTE_IN_SPANS:
            ranges.append((int(params["from"]), int(params["to"])))  # type: ignore[call-overload]
        return write(query, params)

    monkeypatch.setattr(graph.maintenance.executor, "write", seen)
    create_window(
        graph.maintenance,
        ReachNow(graph.maintenance),
        owner.id,
        WindowSpec("migration", start_ms=times[0], end_ms=times[-1] + 1, metric_id=metric_id),
        10,
    )
    stored = graph.anomalies.list_page(metric_id, KeysetPage(None, None, 200))
    assert len(stored) == 128 and all(a.muted for a in stored)
    walked = sum(sum(low <= t < high for t in times) for low, high in ranges)
    assert len(ranges) <= 2 * 128 // 4 + 1
    assert walked <= 8 * 128, f"{len(ranges)} statements walked {walked} anomalies"


def judged_through(
    graph: Repositories, metric_ids: list[str], through_ms: int, judged: int = 1
) -> None:
    """Record that sweeps judged these metrics up to `through_ms` (`judged` readings each,
    all of them raw)."""
    graph.metrics.save_scan_marks(
        [
            ScanMark(
                metric_id=metric_id,
                after_ms=None,
                through_ms=through_ms,
                judged=judged,
                raw=judged,
                compacted_through_ms=None,
                late_seq=0,
                appended_at_ms=None,
                lag_ms=None,
                note=None,
            )
            for metric_id in metric_ids
        ]
    )


def late_from(graph: Repositories, metric_id: str) -> int | None:
    [due] = graph.metrics.due_for_scan(2**62, [metric_id])
    return due.late_from_ms


def requeued(graph: Repositories, window_id: str) -> bool:
    """Whether the look for lost reaches queues the window's again (every reach pending
    counts as lost here: asked for at or before now)."""
    lost = ReachLost()  # other tests' lost reaches come first, 200 a look
    return any(window_id in requeue_pending(graph.maintenance, lost) for _ in range(20))


def incident_of_recent_anomalies(
    graph: Repositories, settings: Settings, count: int = 3, owner: User | None = None
) -> tuple[User, str, list[int], str]:
    """An owner's metric with `count` anomalies of the last minutes, judged by sweeps, in an
    open incident: (owner, metric id, their timestamps, the incident's id). `owner`: a
    metric of a new service of theirs (unrelated to their others: an incident of its own)."""
    if owner is None:
        owner, metric_id = make_metric(graph)
    else:
        service = graph.services.create(owner.id, unique_name("service"), None)
        metric_id = graph.metrics.create(owner.id, service.id, "cpu", None).id
    ref = graph.metrics.get_ref(metric_id)
    assert ref is not None
    base = now_ms() - 10 * MINUTE
    times = [base + i * MINUTE for i in range(count)]
    graph.readings.append(metric_id, [NewReading(f"r{t}", t, 9.0) for t in times])
    stored = graph.anomalies.save(
        metric_id, [anomaly_at(metric_id, f"r{t}", timestamp_ms=t) for t in times]
    )
    [change] = build_incidents(graph, ref, stored, settings)
    judged_through(graph, [metric_id], times[-1])
    return owner, metric_id, times, change.incident_id


def test_a_lost_reach_is_applied_by_the_look_for_lost_ones_and_never_twice(
    graph: Repositories, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's change commits with its reach pending; the task is lost (and then dies
    half-way); the look for lost reaches queues it again, and it is applied once."""
    monkeypatch.setattr(reach, "REACH_TAKEN_AS_LOST_AFTER_SECONDS", 0)
    owner, metric_id, times, incident_id = incident_of_recent_anomalies(graph, settings)
    lost = ReachLost()
    window = create_window(
        graph.maintenance,
        lost,
        owner.id,
        WindowSpec("failover drill", start_ms=times[0], end_ms=times[-1] + 1, metric_id=metric_id),
        10,
    )
    assert lost.lost == [window.id] and window.reach_pending
    stored = graph.maintenance.get(owner.id, window.id)
    assert stored is not None and stored.reach_pending  # what GET shows
    assert not any(
        a.muted for a in graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10))
    )
    assert late_from(graph, metric_id) is None

    # Queued again, it dies after muting, before it records itself applied.
    assert requeued(graph, window.id)
    finish = graph.maintenance.finish_reach

    def died(window_id: str, seq: int) -> None:
        raise RuntimeError("worker lost")

    monkeypatch.setattr(graph.maintenance, "finish_reach", died)
    with pytest.raises(RuntimeError):
        apply_reach(graph.maintenance, window.id, held_by_no_sweep, now_ms())
    monkeypatch.setattr(graph.maintenance, "finish_reach", finish)
    assert all(a.muted for a in graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10)))
    assert graph.maintenance.get(owner.id, window.id).reach_pending  # type: ignore[union-attr]

    # Queued again, it finishes: nothing is muted or resolved twice.
    assert requeued(graph, window.id)
    report = apply_reach(graph.maintenance, window.id, held_by_no_sweep, now_ms())
    assert report is not None and (report.muted, report.resolved) == (0, [])
    assert report.relearnt == 1 and late_from(graph, metric_id) == times[0]
    assert not graph.maintenance.get(owner.id, window.id).reach_pending  # type: ignore[union-attr]
    incident = graph.incidents.get(owner.id, incident_id)
    assert incident is not None and incident.status == "resolved"
    assert incident.resolved_by == "maintenance" and incident.members == 0
    # Retried once more (a redelivery): it changes nothing.
    assert apply_reach(graph.maintenance, window.id, held_by_no_sweep, now_ms()) is None
    assert graph.incidents.get(owner.id, incident_id) == incident
    assert not requeued(graph, window.id)


def requested_at(graph: Repositories, window_id: str) -> object:
    [row] = graph.maintenance.executor.read(
        "MATCH (w:MaintenanceWindow {id: $id}) RETURN w.reach_requested_at AS at", {"id": window_id}
    )
    return row["at"]


def test_only_windows_with_a_reach_pending_are_in_the_look_for_lost_ones(
    graph: Repositories, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look for lost reaches is an index range over the windows that carry the time
    their reach was asked for: an applied reach clears it, and a window applied before that
    rule (its time still set) is cleared by the look, not queued."""
    monkeypatch.setattr(reach, "REACH_TAKEN_AS_LOST_AFTER_SECONDS", 0)
    owner, _ = make_metric(graph)
    span = WindowSpec("deploy", start_ms=T0, end_ms=T0 + HOUR)
    applied = create_window(graph.maintenance, ReachNow(graph.maintenance), owner.id, span, 10)
    assert requested_at(graph, applied.id) is None
    legacy = create_window(graph.maintenance, ReachNow(graph.maintenance), owner.id, span, 10)
    graph.maintenance.executor.write(
        "MATCH (w:MaintenanceWindow {id: $id}) SET w.reach_requested_at = 0", {"id": legacy.id}
    )
    lost = create_window(graph.maintenance, ReachLost(), owner.id, span, 10)
    assert requested_at(graph, lost.id) is not None
    assert requeued(graph, lost.id) and not requeued(graph, legacy.id)
    assert requested_at(graph, legacy.id) is None


def test_an_incident_emptied_by_a_window_is_resolved_and_told_only_if_people_heard_of_it(
    graph: Repositories, settings: Settings
) -> None:
    told_owner, told_metric, told_times, told = incident_of_recent_anomalies(graph, settings)
    opened = graph.incidents.get(told_owner.id, told)
    assert opened is not None
    graph.incidents.mark_notified(told, opened.revision)  # its webhook went out
    unheard_owner, unheard_metric, unheard_times, unheard = incident_of_recent_anomalies(
        graph, settings
    )
    for owner, metric_id, times in [
        (told_owner, told_metric, told_times),
        (unheard_owner, unheard_metric, unheard_times),
    ]:
        create_window(
            graph.maintenance,
            ReachNow(graph.maintenance),
            owner.id,
            WindowSpec("drill", start_ms=times[0], end_ms=times[-1] + 1, metric_id=metric_id),
            10,
        )
    resolved = graph.incidents.get(told_owner.id, told)
    assert resolved is not None and resolved.status == "resolved"
    assert resolved.resolved_by == "maintenance" and resolved.revision == opened.revision + 1
    # The change people are told of (incident.resolved); none of an incident never told.
    pending = {p.incident_id: p for p in graph.incidents.to_notify(10_000)}
    assert pending[told].notified_revision == opened.revision
    assert unheard not in pending
    quiet = graph.incidents.get(unheard_owner.id, unheard)
    assert quiet is not None and quiet.status == "resolved" and quiet.resolved_by == "maintenance"
    # What the webhook, the incident's page and the list say of it: why it is empty.
    detail = incident_detail(graph, resolved, settings.incident_max_hops)
    [summary] = incident_summaries(graph, [resolved], settings.incident_max_hops)
    for title in (detail.title, summary.title):
        assert title == "no anomalies left (a maintenance window made later covers them)"
    assert detail.probable_causes == [] and summary.top_cause is None


def test_a_reach_resolves_only_the_incidents_its_own_mute_emptied(
    graph: Repositories, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resolve after a mute looks up the incidents that mute took members from (an
    index lookup by the window), not every incident of the owner, resolved ones included,
    as it did on every reach of every window. So a reach of another window leaves alone an
    incident a dead reach emptied; that reach, run again, resolves it (its mute finds
    nothing left to mute), even once its window is deleted."""
    owner, first_metric, first_times, first = incident_of_recent_anomalies(graph, settings)
    _, second_metric, second_times, second = incident_of_recent_anomalies(
        graph, settings, owner=owner
    )
    settle_muted = graph.maintenance.settle_muted

    def died(*args: object) -> list[str]:
        raise RuntimeError("worker lost")

    monkeypatch.setattr(graph.maintenance, "settle_muted", died)
    dead = create_window(
        graph.maintenance,
        ReachLost(),
        owner.id,
        WindowSpec("drill", start_ms=first_times[0], end_ms=first_times[-1] + 1,
                   metric_id=first_metric),
        10,
    )  # fmt: skip
    with pytest.raises(RuntimeError):
        apply_reach(graph.maintenance, dead.id, held_by_no_sweep, now_ms())
    monkeypatch.setattr(graph.maintenance, "settle_muted", settle_muted)
    emptied = graph.incidents.get(owner.id, first)
    assert emptied is not None and emptied.status == "open" and emptied.members == 0

    other = create_window(
        graph.maintenance,
        ReachLost(),
        owner.id,
        WindowSpec("drill", start_ms=second_times[0], end_ms=second_times[-1] + 1,
                   metric_id=second_metric),
        10,
    )  # fmt: skip
    report = apply_reach(graph.maintenance, other.id, held_by_no_sweep, now_ms())
    assert report is not None and report.resolved == [second]
    assert graph.incidents.get(owner.id, first) == emptied

    delete_window(graph.maintenance, ReachLost(), owner.id, dead)
    report = apply_reach(graph.maintenance, dead.id, held_by_no_sweep, now_ms())
    assert report is not None and (report.muted, report.resolved) == (0, [first])
    resolved = graph.incidents.get(owner.id, first)
    assert resolved is not None and resolved.resolved_by == "maintenance"


def test_the_incidents_a_mute_touched_are_settled_in_bounded_batches(
    graph: Repositories, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window over an owner's whole past may take members from thousands of open
    incidents: they are resolved or updated WRITE_BATCH (here 2) a statement, each once."""
    monkeypatch.setattr(maintenance_repository, "WRITE_BATCH", 2)
    owner = make_owner(graph)
    made = [incident_of_recent_anomalies(graph, settings, owner=owner) for _ in range(5)]
    settled: list[int] = []
    write = graph.maintenance.executor.write

    def counted(query: str, params: dict[str, object]) -> list[dict[str, object]]:
        rows = write(query, params)
        if query == maintenance_queries.RESOLVE_OR_UPDATE_MUTED_INCIDENTS:
            settled.append(len(rows))
        return rows

    monkeypatch.setattr(graph.maintenance.executor, "write", counted)
    first = min(times[0] for _, _, times, _ in made)
    report = apply_reach(
        graph.maintenance,
        create_window(
            graph.maintenance, ReachLost(), owner.id,
            WindowSpec("migration", start_ms=first, end_ms=now_ms()), 10,
        ).id,
        held_by_no_sweep,
        now_ms(),
    )  # fmt: skip
    assert report is not None and report.updated == []
    assert sorted(report.resolved) == sorted(incident_id for *_, incident_id in made)
    assert settled == [2, 2, 1]


def test_an_incident_keeping_members_outside_the_window_stays_open_and_is_told_once(
    graph: Repositories, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open with fewer members: a change people are told of (incident.updated), once a
    reach however many statements its mute took (here three: batches of 2), and not again
    by a reach that mutes nothing more."""
    monkeypatch.setattr(maintenance_repository, "WRITE_BATCH", 2)
    owner, metric_id, times, incident_id = incident_of_recent_anomalies(graph, settings, 6)
    opened = graph.incidents.get(owner.id, incident_id)
    assert opened is not None and opened.members == 6
    graph.incidents.mark_notified(incident_id, opened.revision)  # its webhook went out
    window = create_window(
        graph.maintenance,
        ReachLost(),
        owner.id,
        WindowSpec("drill", start_ms=times[0], end_ms=times[5], metric_id=metric_id),
        10,
    )
    report = apply_reach(graph.maintenance, window.id, held_by_no_sweep, now_ms())
    assert report is not None and report.muted == 5
    assert (report.resolved, report.updated) == ([], [incident_id])
    incident = graph.incidents.get(owner.id, incident_id)
    assert incident is not None and incident.status == "open" and incident.members == 1
    assert incident.revision == opened.revision + 1 and incident.last_change == "updated"
    assert incident.updated_at == opened.updated_at  # nothing joined
    pending = {p.incident_id: p for p in graph.incidents.to_notify(10_000)}
    assert pending[incident_id].notified_revision == opened.revision
    graph.incidents.mark_notified(incident_id, incident.revision)

    # Narrowed: it mutes nothing more (muting is not undone by a window's change).
    update_window(graph.maintenance, ReachLost(), owner.id, window, {"end_ms": times[3]})
    report = apply_reach(graph.maintenance, window.id, held_by_no_sweep, now_ms())
    assert report is not None and (report.muted, report.resolved, report.updated) == (0, [], [])
    assert graph.incidents.get(owner.id, incident_id) == incident


def test_a_changed_or_deleted_window_relearns_what_it_covered_before(
    graph: Repositories,
) -> None:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    first, second = (graph.metrics.create(owner.id, service.id, n, None).id for n in "ab")
    judged_through(graph, [first, second], T0 + 10 * HOUR)
    lost = ReachLost()
    window = create_window(
        graph.maintenance,
        lost,
        owner.id,
        WindowSpec("deploy", start_ms=T0 + HOUR, end_ms=T0 + 2 * HOUR, metric_id=first),
        10,
    )
    moved = update_window(
        graph.maintenance, lost, owner.id, window, {"metric_id": second, "start_ms": T0}
    )
    renamed = update_window(graph.maintenance, lost, owner.id, moved, {"reason": "4.2"})
    assert renamed.reach_pending and lost.lost == [window.id] * 3
    # Both applied by one task: the metric it covered first, and the one it covers now.
    report = apply_reach(graph.maintenance, window.id, held_by_no_sweep, now_ms())
    assert report is not None and report.relearnt == 2
    assert (late_from(graph, first), late_from(graph, second)) == (T0 + HOUR, T0)
    assert apply_reach(graph.maintenance, window.id, held_by_no_sweep, now_ms()) is None

    # Deleted: gone from every list and lookup at once; its readings are learnt again
    # once its reach is applied, and then its tombstone goes too.
    delete_window(graph.maintenance, lost, owner.id, renamed)
    assert graph.maintenance.get(owner.id, window.id) is None
    assert graph.maintenance.list_owned(owner.id) == []
    assert graph.maintenance.of_owners([owner.id]) == {}
    tombstone = graph.maintenance.reach_of(window.id)
    assert tombstone is not None and tombstone.deleted and tombstone.pending
    report = apply_reach(graph.maintenance, window.id, held_by_no_sweep, now_ms())
    assert report is not None and report.relearnt == 1 and report.muted == 0
    assert graph.maintenance.reach_of(window.id) is None


def test_an_anomaly_judged_before_a_window_was_made_is_not_stored_unmuted_after_it(
    graph: Repositories, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A judgement reads the windows (none), a window over its reading is made and its
    reach applied (nothing stored to mute yet), then the judgement stores its anomaly:
    the write sees the windows changed, and the anomaly is marked again, muted."""
    owner, metric_id = make_metric(graph)
    ref = graph.metrics.get_ref(metric_id)
    assert ref is not None
    at = now_ms() - 5 * MINUTE
    graph.readings.append(metric_id, [NewReading("r0", at, 9.0)])
    of_metric = graph.maintenance.of_metric
    made: list[str] = []

    def then_a_window_is_made(*args: object) -> list[object]:
        windows = of_metric(*args)  # type: ignore[arg-type]
        if not made:  # between this judgement's read of the windows and its write
            made.append(
                create_window(
                    graph.maintenance,
                    ReachNow(graph.maintenance),
                    owner.id,
                    WindowSpec("deploy", start_ms=at - MINUTE, end_ms=at + MINUTE),
                    10,
                ).id
            )
        return windows  # type: ignore[return-value]

    monkeypatch.setattr(graph.maintenance, "of_metric", then_a_window_is_made)
    recorded = record_anomalies(
        graph, ref, [anomaly_at(metric_id, "r0", timestamp_ms=at)], None, settings
    )
    assert made and recorded.stored == 1 and recorded.incidents == []
    [stored] = graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10))
    assert stored.muted
    assert graph.incidents.list_owned(owner.id, None, 0, 10) == []


def test_a_metric_a_batch_holds_is_relearnt_though_judged_before_the_window(
    graph: Repositories,
) -> None:
    """A batch holding the metric may have read the windows before this one was made and
    judge into it: its metric is relearnt from the reading after its judged_through; one
    no batch holds, judged before the window, is not (the next batch reads the window)."""
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    held, free = (graph.metrics.create(owner.id, service.id, n, None).id for n in "ab")
    judged_through(graph, [held, free], T0 + HOUR)
    window = create_window(
        graph.maintenance,
        ReachLost(),
        owner.id,
        WindowSpec("deploy", start_ms=T0 + 2 * HOUR, end_ms=T0 + 3 * HOUR),
        10,
    )
    report = apply_reach(graph.maintenance, window.id, lambda ids: {held} & set(ids), now_ms())
    assert report is not None and report.relearnt == 1
    assert (late_from(graph, held), late_from(graph, free)) == (T0 + HOUR + 1, None)
