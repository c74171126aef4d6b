"""The ingest service (common.ingestion.service.ingest), the path the REST API and the agents'
receivers share, on each engine: metrics found or created, series refused one by one, the
metric limit in request order, concurrent first sight of one metric, the clock skew."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from common.epoch import now_ms
from common.graph.executors import Row
from common.ingestion.models import IngestLimits, Series
from common.ingestion.service import ingest
from common.metrics.integrity import check_chain
from common.metrics.models import NewReading
from common.metrics.queries import APPEND_READINGS
from common.stores import Repositories
from tests.common.repository_support import make_owner

LIMITS = IngestLimits(max_metrics_per_owner=1_000, max_clock_skew_seconds=600)


def samples(*timestamps_ms: int) -> list[NewReading]:
    """Readings as an agent sends them: the id is the sample's time."""
    return [NewReading(str(t), t, float(t % 7)) for t in timestamps_ms]


def test_agent_series_create_their_metrics_once_and_retries_store_nothing(
    graph: Repositories,
) -> None:
    owner = make_owner(graph)
    t = now_ms() - 60_000
    series = [
        Series(samples(t, t + 1000), service_name="node", metric_name="node_load1"),
        Series(
            samples(t),
            service_name="node",
            metric_name='node_cpu_seconds_total{cpu="0",mode="idle"}',
            labels={"cpu": "0", "mode": "idle"},
        ),
        Series(samples(t), service_name="db", metric_name="up"),
    ]
    first = ingest(
        graph.metrics, graph.readings, owner.id, series, create_missing=True, limits=LIMITS
    )
    assert (first.received, first.stored, first.metrics_created) == (4, 4, 3)
    assert not first.errors()
    services = {s.name: s.id for s in graph.services.list_owned(owner.id)}
    assert set(services) == {"node", "db"}
    cpu = graph.metrics.find_by_name(owner.id, services["node"], series[1].metric_name or "")
    assert cpu is not None and cpu.labels == {"cpu": "0", "mode": "idle"}
    again = ingest(
        graph.metrics, graph.readings, owner.id, series, create_missing=True, limits=LIMITS
    )
    assert (again.stored, again.duplicates, again.metrics_created) == (0, 4, 0)
    assert [s.metric_id for s in again.series] == [s.metric_id for s in first.series]
    assert len(graph.services.list_owned(owner.id)) == 2


def test_series_are_refused_one_by_one(graph: Repositories) -> None:
    owner = make_owner(graph)
    t = now_ms()
    future = t + 3_600_000
    series = [
        Series(samples(t), metric_name="no service"),
        Series(samples(t), metric_id="m", service_name="s", metric_name="x"),
        Series([NewReading("a", t, float("inf"))], service_name="s", metric_name="inf"),
        Series(samples(t, future), service_name="s", metric_name="future"),
        Series(
            samples(t), service_name="s", metric_name="x", labels={f"l{i}": "" for i in range(65)}
        ),
        Series(samples(t), service_name="s", metric_name="ok"),
        Series(samples(t + 1), service_name="s", metric_name="ok"),
    ]
    report = ingest(
        graph.metrics, graph.readings, owner.id, series, create_missing=True, limits=LIMITS
    )
    reasons = [s.error.reason if s.error else None for s in report.series]
    assert reasons == [
        "invalid", "invalid", "invalid", "future_timestamp", "invalid", None, "duplicate_series",
    ]  # fmt: skip
    future_error = report.series[3].error
    assert future_error is not None and "reading 1" in future_error.message
    assert report.stored == 1 and report.metrics_created == 1
    assert [s.name for s in graph.services.list_owned(owner.id)] == ["s"]


def test_without_create_missing_unknown_names_are_not_found(graph: Repositories) -> None:
    owner = make_owner(graph)
    report = ingest(
        graph.metrics,
        graph.readings,
        owner.id,
        [Series(samples(1_000), service_name="nope", metric_name="cpu")],
        create_missing=False,
        limits=LIMITS,
    )
    error = report.series[0].error
    assert error is not None and (error.status, error.reason) == (404, "not_found")
    assert graph.services.list_owned(owner.id) == []


def test_another_owners_metric_is_not_found(graph: Repositories) -> None:
    owner, other = make_owner(graph), make_owner(graph)
    service = graph.services.create(other.id, "theirs", None)
    theirs = graph.metrics.create(other.id, service.id, "cpu", None)
    series = [
        Series(samples(1_000), metric_id=theirs.id),
        Series(samples(1_000), service_id=service.id, metric_name="cpu"),
    ]
    report = ingest(
        graph.metrics, graph.readings, owner.id, series, create_missing=True, limits=LIMITS
    )
    assert [s.error.status if s.error else None for s in report.series] == [404, 404]
    assert check_chain(graph.readings, theirs.id).readings == 0


def counted(run: Callable[..., list[Row]], statements: list[str]) -> Callable[..., list[Row]]:
    """The executor's `run` (read or write), noting each statement it is given."""

    def noted(query: str, params: dict[str, Any] | None = None) -> list[Row]:
        statements.append(query)
        return run(query, params)

    return noted


def test_metrics_named_by_id_are_found_by_the_append_and_wrong_guesses_placed_after(
    graph: Repositories, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, other = make_owner(graph), make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    mine = [graph.metrics.create(owner.id, service.id, f"m{i}", None).id for i in range(3)]
    theirs = graph.metrics.create(
        other.id, graph.services.create(other.id, "x", None).id, "m", None
    )
    for metric_id in [*mine, theirs.id]:
        graph.readings.append(metric_id, samples(10_000, 20_000))
    statements: list[str] = []
    for kind in ("read", "write"):
        monkeypatch.setattr(
            graph.executor, kind, counted(getattr(graph.executor, kind), statements)
        )

    def send(series: list[Series]) -> list[tuple[str | None, int, int]]:
        statements.clear()
        report = ingest(
            graph.metrics, graph.readings, owner.id, series, create_missing=False, limits=LIMITS
        )
        return [
            (s.error.reason if s.error else None, s.stored, s.duplicates) for s in report.series
        ]

    # A fleet's minute, every reading its metric's newest: one statement, nothing read first.
    assert send([Series(samples(30_000), metric_id=m) for m in mine]) == [(None, 1, 0)] * 3
    assert statements == [APPEND_READINGS]
    # Guessed wrong: a late reading, a re-sent one, another owner's metric, no such metric
    # (named twice: not found both times, as a lookup first would answer).
    assert send(
        [
            Series(samples(15_000, 40_000), metric_id=mine[0]),
            Series(samples(30_000), metric_id=mine[1]),
            Series(samples(30_000), metric_id=theirs.id),
            Series(samples(30_000), metric_id="nope"),
            Series(samples(40_000), metric_id="nope"),
            Series(samples(40_000), metric_id=mine[2]),
        ]
    ) == [
        (None, 2, 0), (None, 0, 1), ("not_found", 0, 0), ("not_found", 0, 0),
        ("not_found", 0, 0), (None, 1, 0),
    ]  # fmt: skip
    assert [check_chain(graph.readings, m).readings for m in mine] == [5, 3, 4]
    assert all(check_chain(graph.readings, m).ok for m in mine)
    assert check_chain(graph.readings, theirs.id).readings == 2


def test_the_metric_limit_creates_in_request_order(graph: Repositories) -> None:
    owner = make_owner(graph)
    limits = IngestLimits(max_metrics_per_owner=3, max_clock_skew_seconds=600)
    series = [Series(samples(1_000), service_name="s", metric_name=f"m{i}") for i in range(5)]
    report = ingest(
        graph.metrics, graph.readings, owner.id, series, create_missing=True, limits=limits
    )
    assert [s.created for s in report.series] == [True, True, True, False, False]
    for refused, name in zip(report.series[3:], ("s/m3", "s/m4"), strict=True):
        assert refused.error is not None and refused.error.status == 429
        assert name in refused.error.message and "MAX_METRICS_PER_OWNER" in refused.error.message
    # Metrics that exist still take readings at the limit; new ones, even alone, do not.
    series = [Series(samples(2_000), service_name="s", metric_name=f"m{i}") for i in (0, 9)]
    report = ingest(
        graph.metrics, graph.readings, owner.id, series, create_missing=True, limits=limits
    )
    assert report.series[0].stored == 1 and report.series[1].error is not None
    assert report.series[1].error.reason == "metric_limit"


def test_first_sight_of_one_metric_from_many_requests_at_once_makes_it_once(
    graph: Repositories,
) -> None:
    owner = make_owner(graph)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def send(worker: int) -> None:
        series = [
            Series(samples(1_000 * (worker + 1)), service_name="shared", metric_name="cpu"),
            Series(samples(1_000), service_name=f"own{worker}", metric_name="cpu"),
        ]
        try:
            start.wait(timeout=30)
            report = ingest(
                graph.metrics, graph.readings, owner.id, series, create_missing=True, limits=LIMITS
            )
            assert not report.errors(), report.errors()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors[0]
    services = graph.services.list_owned(owner.id)
    assert sorted(s.name for s in services) == [
        "own0",
        "own1",
        "own2",
        "own3",
        "own4",
        "own5",
        "shared",
    ]
    shared = next(s for s in services if s.name == "shared")
    [metric] = graph.metrics.list_in_service(owner.id, shared.id)
    report = check_chain(graph.readings, metric.id)
    assert report.ok and report.readings == 6, report.problems
