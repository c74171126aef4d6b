"""GraphStore contract: the same tests on embedded FalkorDB and on a real Neo4j 5.26."""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from common.auth import new_api_key
from common.errors import ConflictError, NotFoundError
from common.graph.executors import FalkorDBExecutor
from common.graph.integrity import check_chain
from common.graph.schema import existing_schema, schema_items
from common.graph.store import GraphStore
from common.ids import new_id
from common.models import AnomalyPoint, NewReading, User, from_epoch_ms, to_epoch_ms
from common.settings import Settings

T0 = 1_700_000_000_000  # epoch ms


@pytest.fixture
def graph(store: GraphStore) -> GraphStore:
    """The session's store, on each engine in turn (see tests/conftest.py)."""
    return store


def make_owner(graph: GraphStore) -> User:
    return graph.create_user("owner", new_api_key().hashed)


def make_metric(graph: GraphStore) -> tuple[User, str]:
    owner = make_owner(graph)
    service = graph.create_service(owner.id, "api", None)
    return owner, graph.create_metric(owner.id, service.id, "cpu", None).id


def readings(timestamps: list[int], prefix: str = "r") -> list[NewReading]:
    return [NewReading(id=f"{prefix}{t}", timestamp_ms=T0 + t, value=float(t)) for t in timestamps]


def test_schema_bootstrap_is_idempotent(graph: GraphStore) -> None:
    graph.ensure_schema()
    graph.ensure_schema()


@pytest.fixture
def schemaless(graph: GraphStore, settings: Settings) -> Iterator[list[GraphStore]]:
    """Four stores (one connection each) on a graph without our constraints and indexes.

    FalkorDB: a new, empty graph. Neo4j (one database): the session's, with our schema
    dropped; the test puts it back, and the next start would too.
    """
    if graph.executor.engine == "falkordb":
        name = f"schema-{new_id()}"
        stores = [GraphStore(FalkorDBExecutor.from_url(settings.graph_url, name)) for _ in range(4)]
    else:
        for item in schema_items("neo4j"):
            [name] = item.listed_as
            kind = "CONSTRAINT" if item.statement.startswith("CREATE CONSTRAINT") else "INDEX"
            graph.executor.write(f"DROP {kind} {name} IF EXISTS")
        assert not {n for i in schema_items("neo4j") for n in i.listed_as} & existing_schema(
            graph.executor
        )
        stores = [GraphStore.connect(settings) for _ in range(4)]
    yield stores
    for each in stores:
        each.close()
    graph.ensure_schema()


def test_schema_created_by_concurrent_starts(schemaless: list[GraphStore]) -> None:
    # Web workers and Celery workers start together and each ensures the schema: all must
    # succeed, whoever creates an index first.
    start = threading.Barrier(len(schemaless))

    def ensure(store: GraphStore) -> None:
        start.wait(timeout=30)
        store.ensure_schema()

    with ThreadPoolExecutor(len(schemaless)) as pool:
        list(pool.map(ensure, schemaless))
    executor = schemaless[0].executor
    wanted = {name for item in schema_items(executor.engine) for name in item.listed_as}
    assert wanted <= existing_schema(executor)


def test_extreme_values_and_timestamps_read_back(graph: GraphStore) -> None:
    owner, metric_id = make_metric(graph)
    # 1970 to 2200 in epoch ms (64-bit), values up to the API's 1e308, subnormal, -0.0.
    values = [1e308, -1e308, 5e-324, -0.0, 0.1, float(2**53 + 2), 123456.789012345]
    last_ms = 7_258_118_399_999  # 2199-12-31T23:59:59.999Z
    stamps = [0, 1, 2**31, 2**32 + 1, 1_700_000_000_000, last_ms - 1, last_ms]
    graph.append_readings(
        metric_id,
        [
            NewReading(id=f"x{i}", timestamp_ms=t, value=v)
            for i, (t, v) in enumerate(zip(stamps, values, strict=True))
        ],
    )
    window = graph.read_window(metric_id, None, None)
    assert window.timestamps_ms.tolist() == stamps
    # FalkorDB replies with 15 significant digits; Neo4j's Bolt floats are exact.
    for got, sent in zip(window.values.tolist(), values, strict=True):
        assert math.isclose(got, sent, rel_tol=1e-14, abs_tol=0.0) or got == sent == 0.0
    metric = graph.get_metric(owner.id, metric_id)
    assert metric is not None and metric.latest_reading is not None
    assert metric.latest_reading.timestamp == datetime(2199, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def test_user_found_by_key_hash_only(graph: GraphStore) -> None:
    key = new_api_key()
    user = graph.create_user("alice", key.hashed)
    assert graph.find_user_by_key_hash(key.hashed) == user
    assert graph.find_user_by_key_hash(new_api_key().hashed) is None


def test_service_crud_is_scoped_to_owner(graph: GraphStore) -> None:
    alice, bob = make_owner(graph), make_owner(graph)
    service = graph.create_service(alice.id, "checkout", "payments")
    assert graph.get_service(alice.id, service.id) == service
    assert graph.get_service(bob.id, service.id) is None
    assert service.id not in [s.id for s in graph.list_services(bob.id)]
    assert graph.update_service(bob.id, service.id, name="stolen") is None
    updated = graph.update_service(alice.id, service.id, name="cart", set_description=True)
    assert updated is not None and updated.name == "cart" and updated.description is None
    assert not graph.delete_service(bob.id, service.id)
    assert graph.delete_service(alice.id, service.id)
    assert graph.get_service(alice.id, service.id) is None


def test_duplicate_metric_name_in_service_conflicts(graph: GraphStore) -> None:
    owner = make_owner(graph)
    service = graph.create_service(owner.id, "api", None)
    graph.create_metric(owner.id, service.id, "cpu", None)
    with pytest.raises(ConflictError):
        graph.create_metric(owner.id, service.id, "cpu", "again")
    other = graph.create_service(owner.id, "db", None)
    graph.create_metric(owner.id, other.id, "cpu", None)  # same name, other service: fine
    assert len(graph.list_metrics(owner.id, service.id)) == 1


def test_metric_in_someone_elses_service_is_not_found(graph: GraphStore) -> None:
    alice, bob = make_owner(graph), make_owner(graph)
    service = graph.create_service(alice.id, "api", None)
    with pytest.raises(NotFoundError):
        graph.create_metric(bob.id, service.id, "cpu", None)


def test_rename_metric_onto_taken_name_conflicts(graph: GraphStore) -> None:
    owner = make_owner(graph)
    service = graph.create_service(owner.id, "api", None)
    graph.create_metric(owner.id, service.id, "cpu", None)
    mem = graph.create_metric(owner.id, service.id, "mem", None)
    with pytest.raises(ConflictError):
        graph.update_metric(owner.id, mem.id, name="cpu")
    renamed = graph.update_metric(
        owner.id, mem.id, name="memory", description="rss", set_description=True
    )
    assert renamed is not None and (renamed.name, renamed.description) == ("memory", "rss")


def test_in_order_appends_form_one_chain(graph: GraphStore) -> None:
    owner, metric_id = make_metric(graph)
    assert graph.append_readings(metric_id, readings([1, 2, 3])) == 3
    assert graph.append_readings(metric_id, readings([4])) == 1
    report = check_chain(graph, metric_id)
    assert report.ok, report.problems
    assert report.readings == report.linked == 4
    metric = graph.get_metric(owner.id, metric_id)
    assert metric is not None and metric.latest_reading is not None
    assert metric.latest_reading.id == "r4"


def test_shuffled_readings_end_up_as_one_ordered_chain(graph: GraphStore) -> None:
    _, metric_id = make_metric(graph)
    order = list(range(100))
    random.Random(7).shuffle(order)
    for t in order:
        graph.append_readings(metric_id, readings([t]))
    report = check_chain(graph, metric_id)
    assert report.ok, report.problems
    assert report.readings == 100
    window = graph.read_window(metric_id, None, None)
    assert list(window.timestamps_ms) == [T0 + t for t in range(100)]


def test_late_batch_is_spliced_in_place(graph: GraphStore) -> None:
    _, metric_id = make_metric(graph)
    graph.append_readings(metric_id, readings(list(range(0, 100, 10))))
    graph.append_readings(metric_id, readings([55, 5, 95, 200, 0], prefix="late"))
    report = check_chain(graph, metric_id)
    assert report.ok, report.problems
    assert report.readings == 15


def test_resent_ids_are_stored_once(graph: GraphStore) -> None:
    _, metric_id = make_metric(graph)
    batch = readings(list(range(50)))
    assert graph.append_readings(metric_id, batch) == 50
    assert graph.append_readings(metric_id, batch) == 0
    assert graph.append_readings(metric_id, batch[:3] + readings([99])) == 1
    # A repeat inside one batch: the first one wins.
    twice = [NewReading("dup", T0 + 500, 1.0), NewReading("dup", T0 + 600, 2.0)]
    assert graph.append_readings(metric_id, twice) == 1
    report = check_chain(graph, metric_id)
    assert report.ok and report.readings == 52


def test_same_timestamp_readings_are_kept_and_ordered_by_id(graph: GraphStore) -> None:
    _, metric_id = make_metric(graph)
    graph.append_readings(metric_id, [NewReading("b", T0, 1.0), NewReading("c", T0, 2.0)])
    graph.append_readings(metric_id, [NewReading("a", T0, 0.0)])
    assert graph.read_window(metric_id, None, None).ids == ["a", "b", "c"]
    assert check_chain(graph, metric_id).ok


def test_read_window_is_a_time_range(graph: GraphStore) -> None:
    _, metric_id = make_metric(graph)
    graph.append_readings(metric_id, readings(list(range(100))))
    window = graph.read_window(metric_id, from_epoch_ms(T0 + 10), from_epoch_ms(T0 + 20))
    assert list(window.timestamps_ms) == [T0 + t for t in range(10, 20)]
    assert list(window.values) == [float(t) for t in range(10, 20)]
    newest = graph.read_window(metric_id, None, None, limit=5, newest=True)
    assert list(newest.timestamps_ms) == [T0 + t for t in range(95, 100)]


def test_list_readings_pages_without_gaps_or_repeats(graph: GraphStore) -> None:
    _, metric_id = make_metric(graph)
    graph.append_readings(
        metric_id, [NewReading(f"id{i:03}", T0 + i // 3, float(i)) for i in range(30)]
    )
    seen: list[str] = []
    after = None
    while True:
        page = graph.list_readings(metric_id, None, None, limit=7, after=after)
        if not page:
            break
        seen += page.ids
        assert list(page.values) == [float(seen.index(i)) for i in page.ids]
        after = (int(page.timestamps_ms[-1]), page.ids[-1])
    assert seen == [f"id{i:03}" for i in range(30)]


def test_first_timestamp_of_a_window(graph: GraphStore) -> None:
    _, metric_id = make_metric(graph)
    assert graph.first_timestamp(metric_id, None, None) is None
    graph.append_readings(metric_id, [NewReading(f"r{i}", T0 + i, float(i)) for i in range(10)])
    assert graph.first_timestamp(metric_id, None, None) == T0
    assert graph.first_timestamp(metric_id, from_epoch_ms(T0 + 2), from_epoch_ms(T0 + 5)) == T0 + 2
    assert graph.first_timestamp(metric_id, from_epoch_ms(T0 + 20), None) is None


def test_window_buckets_keep_each_buckets_extremes(graph: GraphStore) -> None:
    _, metric_id = make_metric(graph)
    values = [1.0, 2.0, 3.0, 50.0, 5.0, 6.0, -7.0, 8.0, 9.0, 10.0]
    graph.append_readings(
        metric_id, [NewReading(f"r{i}", T0 + i * 10, v) for i, v in enumerate(values)]
    )
    # Buckets of 30 ms from T0 + 10: [10, 40) [40, 70) [70, 100); bucket 3 is empty.
    buckets = graph.window_buckets(metric_id, T0 + 10, T0 + 130, 30)
    assert list(buckets.index) == [0, 1, 2]
    assert list(buckets.low) == [2.0, -7.0, 8.0]
    assert list(buckets.high) == [50.0, 6.0, 10.0]
    assert list(buckets.readings) == [3, 3, 3]


def test_delete_metric_removes_its_readings(graph: GraphStore) -> None:
    owner, metric_id = make_metric(graph)
    graph.append_readings(metric_id, readings([1, 2, 3]))
    assert graph.delete_metric(owner.id, metric_id)
    assert graph.get_metric(owner.id, metric_id) is None
    assert len(graph.read_window(metric_id, None, None)) == 0


def test_delete_service_removes_metrics_readings_and_anomalies(graph: GraphStore) -> None:
    owner = make_owner(graph)
    service = graph.create_service(owner.id, "api", None)
    metric = graph.create_metric(owner.id, service.id, "cpu", None)
    graph.append_readings(metric.id, readings([1, 2]))
    graph.save_anomalies(metric.id, [anomaly_at("r2")])
    assert graph.delete_service(owner.id, service.id)
    assert graph.get_metric(owner.id, metric.id) is None
    assert len(graph.read_window(metric.id, None, None)) == 0
    assert graph.list_anomalies(metric.id, None, None, 10) == []


def anomaly_at(reading_id: str, method: str = "rolling") -> AnomalyPoint:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    return AnomalyPoint(
        reading_id=reading_id, timestamp=moment, value=9.0, expected=1.0, lower=0.0, upper=2.0,
        score=4.0, method=method, event_start=moment, event_end=moment,
    )  # fmt: skip


def test_anomalies_are_saved_idempotently(graph: GraphStore) -> None:
    _, metric_id = make_metric(graph)
    graph.append_readings(metric_id, readings([1, 2, 3]))
    assert graph.save_anomalies(metric_id, [anomaly_at("r2")], job_id="j1") == 1
    assert graph.save_anomalies(metric_id, [anomaly_at("r2")], job_id="j2") == 1
    graph.save_anomalies(metric_id, [anomaly_at("r2", method="stl")])
    found = graph.list_anomalies(metric_id, None, None, 10)
    assert sorted(a.method for a in found) == ["rolling", "stl"]
    assert {a.reading_id for a in found} == {"r2"}
    # An anomaly for a reading that does not exist is not stored.
    assert graph.save_anomalies(metric_id, [anomaly_at("missing")]) == 0


def test_anomaly_pages_return_each_anomaly_once_in_order(graph: GraphStore) -> None:
    """Keyset paging: three readings and two methods share each timestamp, so pages of 7
    split runs of equal timestamps; the window drops the first and last timestamps."""
    _, metric_id = make_metric(graph)
    graph.append_readings(metric_id, readings(list(range(30))))
    points = [
        anomaly_at(f"r{t}", method).model_copy(update={"timestamp": from_epoch_ms(T0 + t // 3)})
        for t in range(30)
        for method in ("rolling", "stl")
    ]
    graph.save_anomalies(metric_id, points)
    start, end = from_epoch_ms(T0 + 1), from_epoch_ms(T0 + 9)
    everything = graph.list_anomalies(metric_id, start, end, 1000)
    assert len(everything) == 48
    assert [(a.timestamp, a.id) for a in everything] == sorted(
        (a.timestamp, a.id) for a in everything
    )
    paged: list[str] = []
    after = None
    for _ in range(10):  # 7 full pages, then an empty one
        page = graph.list_anomalies(metric_id, start, end, 7, after)
        if not page:
            break
        paged += [a.id for a in page]
        after = (to_epoch_ms(page[-1].timestamp), page[-1].id)
    assert paged == [a.id for a in everything]


def test_metrics_with_readings_since(graph: GraphStore) -> None:
    owner, metric_id = make_metric(graph)
    before = datetime.now(UTC)
    graph.append_readings(metric_id, readings([1]))
    due = {ref.id: ref for ref in graph.metrics_with_readings_since(before)}
    assert metric_id in due and due[metric_id].owner_id == owner.id
    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
    assert metric_id not in {ref.id for ref in graph.metrics_with_readings_since(later)}


def test_concurrent_appends_to_one_metric_keep_one_chain(graph: GraphStore) -> None:
    """The metric's write lock (Neo4j) / one writer per graph (FalkorDB) prevents forks."""
    _, metric_id = make_metric(graph)
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for i in range(25):
                t = i * 8 + worker  # interleaved across writers
                graph.append_readings(metric_id, [NewReading(f"w{worker}-{i}", T0 + t, 1.0)])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    report = check_chain(graph, metric_id)
    assert report.ok, report.problems
    assert report.readings == 200


def test_concurrent_appends_to_one_metric_queue_without_deadlocks(
    graph: GraphStore, caplog: pytest.LogCaptureFixture
) -> None:
    # Neo4j reports a wait for a node that the waiting transaction's holder then links
    # (LATEST_READING) as a deadlock; the driver retries it, but under load those retries
    # made appends time out. Appends must queue on their lock, not fail and retry.
    _, metric_id = make_metric(graph)
    graph.append_readings(metric_id, [NewReading("first", T0 - 1, 0.0)])
    start = threading.Barrier(8)

    def writer(worker: int) -> None:
        start.wait(timeout=30)
        for i in range(30):
            graph.append_readings(
                metric_id, [NewReading(f"w{worker}-{i}", T0 + i * 8 + worker, 1.0)]
            )

    with caplog.at_level(logging.WARNING, logger="neo4j"), ThreadPoolExecutor(8) as pool:
        list(pool.map(writer, range(8)))
    retried = [r.getMessage()[:300] for r in caplog.records if "DeadlockDetected" in r.getMessage()]
    assert not retried, f"{len(retried)} appends were refused as deadlocks, first: {retried[0]}"
    report = check_chain(graph, metric_id)
    assert report.ok and report.readings == 241, report.problems


def test_unknown_metric_append_stores_nothing(graph: GraphStore) -> None:
    assert graph.append_readings(new_id(), readings([1])) == 0
