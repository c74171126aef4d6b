"""Incidents built in the graph (embedded FalkorDB): membership, idempotency, races, resolve."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from common.anomalies.models import NewAnomaly
from common.epoch import to_epoch_ms
from common.incidents.building import build_incidents, clusters
from common.incidents.models import Incident
from common.metrics.models import MetricRef, NewReading
from common.settings import Settings
from common.stores import Repositories
from common.users.keys import new_api_key
from tests.support import unique_name

# A fixed time for the pure clustering test.
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def recent_t0() -> datetime:
    """15 minutes ago, taken when a test starts: anomalies older than
    INCIDENT_RESOLVE_SECONDS (30 min) are history and open none, and the Neo4j half of a
    busy suite runs long after this module was imported."""
    return datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=15)


class Owner:
    """A user with services and metrics, straight in the graph."""

    def __init__(self, store: Repositories):
        self.store = store
        self.user = store.users.create(unique_name("incidents"), new_api_key().hashed)
        self.t0 = recent_t0()
        self.services: dict[str, str] = {}

    def service(self, name: str) -> str:
        if name not in self.services:
            self.services[name] = self.store.services.create(self.user.id, name, None).id
        return self.services[name]

    def metric(self, service: str, name: str) -> MetricRef:
        service_id = self.service(service)
        metric = self.store.metrics.create(self.user.id, service_id, name, None)
        return MetricRef(id=metric.id, name=name, service_id=service_id, owner_id=self.user.id)

    def depends(self, service: str, on: str) -> None:
        assert self.store.services.add_dependency(
            self.user.id, self.service(service), self.service(on)
        )

    def anomalies(self, metric: MetricRef, minutes: list[float]) -> list[NewAnomaly]:
        """Readings at these minutes after t0, each stored as an anomaly of its own event."""
        found = []
        for minute in minutes:
            at = to_epoch_ms(self.t0 + timedelta(minutes=minute))
            reading_id = f"r{minute}"
            self.store.readings.append(metric.id, [NewReading(reading_id, at, 9.0)])
            found.append(
                NewAnomaly(
                    metric.id, reading_id, timestamp_ms=at, value=9.0, expected=1.0, lower=0.0,
                    upper=2.0, score=4.0, method="rolling", event_start_ms=at, event_end_ms=at,
                )
            )  # fmt: skip
        self.store.anomalies.save(metric.id, found, job_id="test")
        return found


def test_related_anomalies_join_one_incident_and_a_rerun_changes_nothing(
    graph: Repositories, settings: Settings
) -> None:
    owner = Owner(graph)
    owner.depends("checkout", "payments")
    errors = owner.metric("payments", "error_rate")
    latency = owner.metric("checkout", "latency")
    first = build_incidents(graph, errors, owner.anomalies(errors, [0, 1]), settings)
    assert [(c.opened, c.joined) for c in first] == [(True, 2)]
    points = owner.anomalies(latency, [4, 5, 6])
    second = build_incidents(graph, latency, points, settings)
    assert [(c.incident_id, c.opened, c.joined) for c in second] == [
        (first[0].incident_id, False, 3)
    ]
    assert build_incidents(graph, latency, points, settings) == []  # re-run: nothing new
    [incident] = graph.incidents.list_owned(owner.user.id, None, 0, 10)
    assert incident.members == 5 and incident.status == "open"
    assert incident.started_at == owner.t0
    assert incident.ended_at == owner.t0 + timedelta(minutes=6)
    assert len(graph.incidents.members(incident.id, 100)) == 5
    # A deleted metric's anomalies leave the incident, and its count says so.
    assert graph.metrics.delete(owner.user.id, latency.id)
    [incident] = graph.incidents.list_owned(owner.user.id, None, 0, 10)
    assert incident.members == 2
    assert len(graph.incidents.members(incident.id, 100)) == 2


def test_unrelated_or_distant_anomalies_open_their_own_incidents(
    graph: Repositories, settings: Settings
) -> None:
    owner = Owner(graph)
    api = owner.metric("api", "cpu")
    billing = owner.metric("billing", "cpu")  # no dependency between api and billing
    build_incidents(graph, api, owner.anomalies(api, [0]), settings)
    build_incidents(graph, billing, owner.anomalies(billing, [1]), settings)
    # 11 minutes later: past INCIDENT_GAP_SECONDS (600), so a new incident of its own.
    later = build_incidents(graph, api, owner.anomalies(api, [11]), settings)
    assert later[0].opened
    assert len(graph.incidents.list_owned(owner.user.id, None, 0, 10)) == 3


def test_dependency_farther_than_max_hops_is_unrelated(
    graph: Repositories, settings: Settings
) -> None:
    owner = Owner(graph)
    for dependent, dependency in [("web", "a"), ("a", "b"), ("b", "c"), ("c", "db")]:
        owner.depends(dependent, dependency)
    web, db, b = owner.metric("web", "m"), owner.metric("db", "m"), owner.metric("b", "m")
    build_incidents(graph, web, owner.anomalies(web, [0]), settings)
    far = build_incidents(graph, db, owner.anomalies(db, [0]), settings)  # 4 hops away
    near = build_incidents(graph, b, owner.anomalies(b, [0]), settings)  # 2 hops away
    assert far[0].opened and not near[0].opened


def test_history_opens_no_incident(graph: Repositories, settings: Settings) -> None:
    owner = Owner(graph)
    api = owner.metric("api", "cpu")
    assert build_incidents(graph, api, owner.anomalies(api, [-120, -119]), settings) == []
    assert graph.incidents.list_owned(owner.user.id, None, 0, 10) == []
    # A job spanning both: only the recent cluster makes an incident.
    [change] = build_incidents(graph, api, owner.anomalies(api, [-60, 0]), settings)
    assert change.opened and change.joined == 1


def test_one_job_with_events_far_apart_makes_separate_clusters() -> None:
    def point(minute: int) -> NewAnomaly:
        at = to_epoch_ms(T0 + timedelta(minutes=minute))
        return NewAnomaly(
            "m", str(minute), timestamp_ms=at, value=1, expected=0, lower=0, upper=0,
            score=2, method="rolling", event_start_ms=at, event_end_ms=at,
        )  # fmt: skip

    groups = clusters([point(30), point(0), point(5), point(40)], gap_ms=600_000)
    assert [[p.reading_id for p in g] for g in groups] == [["0", "5"], ["30", "40"]]


def test_concurrent_builders_open_one_incident(
    graph: Repositories, connect: Callable[[], Repositories], settings: Settings
) -> None:
    owner = Owner(graph)
    metrics = [owner.metric("api", f"m{i}") for i in range(6)]
    batches = [(m, owner.anomalies(m, [i * 0.5])) for i, m in enumerate(metrics)]
    barrier = threading.Barrier(len(batches))
    stores = [connect() for _ in batches]  # one connection per "worker"
    errors: list[BaseException] = []

    def build(metric: MetricRef, points: list[NewAnomaly]) -> None:
        try:
            barrier.wait(10)
            build_incidents(stores.pop(), metric, points, settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=build, args=batch) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    [incident] = graph.incidents.list_owned(owner.user.id, None, 0, 10)
    assert incident.members == 6


def test_quiet_incident_resolves_and_the_next_anomaly_opens_a_new_one(
    graph: Repositories, settings: Settings
) -> None:
    owner = Owner(graph)
    api = owner.metric("api", "cpu")
    [opened] = build_incidents(graph, api, owner.anomalies(api, [0]), settings)
    assert opened.incident_id not in graph.incidents.resolve_quiet(quiet_for_ms=60_000)
    time.sleep(0.05)
    assert opened.incident_id in graph.incidents.resolve_quiet(quiet_for_ms=10)
    resolved = graph.incidents.get(owner.user.id, opened.incident_id)
    assert resolved is not None and resolved.status == "resolved"
    assert resolved.resolved_by == "quiet" and resolved.last_change == "resolved"
    [again] = build_incidents(graph, api, owner.anomalies(api, [1]), settings)
    assert again.opened and again.incident_id != opened.incident_id


def test_resolving_while_anomalies_join_never_leaves_them_in_a_resolved_incident(
    graph: Repositories, connect: Callable[[], Repositories], settings: Settings
) -> None:
    """Resolving takes the owner's lock as joining does. Without it, on Neo4j, a join that
    had read the incident as open added its anomalies after the resolve committed: they
    sat in a resolved incident ("updated" after "resolved") and paged nobody."""
    owner = Owner(graph)
    # A long open incident of an unrelated service: every join reads through its members,
    # which keeps the join's decision in flight long enough for a resolve to land in it.
    busy = owner.metric("billing", "cpu")
    start = to_epoch_ms(owner.t0)
    graph.readings.append(busy.id, [NewReading(f"b{i}", start + i, 1.0) for i in range(3000)])
    long_event = [
        NewAnomaly(
            busy.id, f"b{i}", timestamp_ms=start + i, value=1.0, expected=0.0, lower=0.0,
            upper=0.5, score=2.0, method="rolling", event_start_ms=start,
            event_end_ms=start + 2999,
        )
        for i in range(3000)
    ]  # fmt: skip
    graph.anomalies.save(busy.id, long_event)
    build_incidents(graph, busy, long_event, settings)
    joiner, resolver = connect(), connect()
    bad: list[str] = []
    for attempt in range(12):
        metric = owner.metric(f"svc{attempt}", "cpu")  # unrelated to the others
        [opened] = build_incidents(graph, metric, owner.anomalies(metric, [0]), settings)
        news = owner.anomalies(metric, [1, 2])

        def join(ref: MetricRef = metric, points: list[NewAnomaly] = news) -> None:
            build_incidents(joiner, ref, points, settings)

        def resolve(incident_id: str = opened.incident_id, delay: float = attempt / 400) -> None:
            time.sleep(delay)  # land at a different point of the join each time
            resolver.incidents.resolve(owner.user.id, incident_id, "alice")

        race(join, resolve)
        incident = graph.incidents.get(owner.user.id, opened.incident_id)
        assert incident is not None and incident.status == "resolved"
        if incident.last_change != "resolved":
            bad.append(f"attempt {attempt}: {incident.members} members, {incident.last_change}")
        # The news is where people hear of it: in the incident before it was resolved, or
        # in a new open one.
        holder = incident_holding(graph, owner, news[0].id)
        assert holder is not None
        assert holder.id == opened.incident_id or holder.status == "open", holder
    assert bad == []


def race(*calls: Callable[[], object]) -> None:
    """Run the calls at once, each in a thread of its own; re-raise the first error."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            barrier.wait(10)
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]


def incident_holding(graph: Repositories, owner: Owner, anomaly_id: str) -> Incident | None:
    for incident in graph.incidents.list_owned(owner.user.id, None, 0, 1000):
        if anomaly_id in {m.id for m in graph.incidents.members(incident.id, 10_000)}:
            return incident
    return None
