"""Compacted history, on each engine: readings moved from the raw window into chunks (and
late readings merged into them, and old ones deleted by retention) read back exactly as
before through every read path, and the raw window keeps the chain's invariants.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from common.graph.params import KeysetPage
from common.ids import reading_id
from common.metrics import chunks as codec
from common.metrics import compaction, repository
from common.metrics.compaction import MaintenanceReport, apply_retention, compact_metric
from common.metrics.integrity import check_chain
from common.metrics.models import CompactionTarget, NewReading, ReadingSeries
from common.metrics.placement import Gap
from common.metrics.repository import ReadingRepository
from common.metrics.series import chart_series
from common.stores import Repositories
from tests.common.repository_support import T0, anomaly_at, make_metric

MINUTE = 60_000


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Chunks of a few readings, so that a test of a few hundred has many, and cuts; and
    long reads in pieces of a few dozen (raw spans, groups of chunks)."""
    monkeypatch.setattr(repository, "READ_BATCH", 40)
    monkeypatch.setattr(codec, "CHUNK_READINGS", 16)
    monkeypatch.setattr(codec, "CHUNK_READINGS_MAX", 32)
    monkeypatch.setattr(compaction, "CHUNK_READINGS", 16)
    monkeypatch.setattr(compaction, "MAX_MOVED", 50)
    yield


def target(graph: Repositories, owner_id: str, metric_id: str) -> CompactionTarget:
    metric = graph.metrics.get(owner_id, metric_id)
    assert metric is not None
    latest = metric.latest_reading
    return CompactionTarget(
        metric_id,
        graph.readings.boundary(metric_id),
        None if latest is None else int(latest.timestamp.timestamp() * 1000),
    )


def compact(
    graph: Repositories, owner_id: str, metric_id: str, boundary_ms: int
) -> MaintenanceReport:
    report = MaintenanceReport()
    compact_metric(graph.readings, target(graph, owner_id, metric_id), boundary_ms, report)
    return report


@dataclass(frozen=True)
class Views:
    """Everything the read paths say of a metric, in plain values to compare."""

    whole: list[tuple[str, int, float]]
    windows: list[list[tuple[str, int, float]]]
    newest: list[list[tuple[str, int, float]]]
    pages: list[list[tuple[str, int, float]]]
    firsts: list[int | None]
    buckets: list[tuple[list[int], list[float], list[float], list[int]]]
    chart: tuple[list[int], list[float], list[float], list[int]]


def rows(series: ReadingSeries) -> list[tuple[str, int, float]]:
    return list(zip(series.ids, series.timestamps_ms.tolist(), series.values.tolist(), strict=True))


def views(graph: Repositories, owner_id: str, metric_id: str, span: tuple[int, int]) -> Views:
    readings = graph.readings
    lo, hi = span
    cuts = [
        (lo, hi),
        (lo + (hi - lo) // 3, lo + 2 * (hi - lo) // 3),
        (lo - 5, lo + 7),
        (hi - 9, hi + 1),
    ]
    pages = []
    for size in (7, 50):
        after = None
        seen: list[tuple[str, int, float]] = []
        while True:
            page = readings.list_page(metric_id, KeysetPage(None, None, size, after))
            seen += rows(page)
            if len(page) < size:
                break
            after = (int(page.timestamps_ms[-1]), page.ids[-1])
        pages.append(seen)
    metric = graph.metrics.get(owner_id, metric_id)
    assert metric is not None
    chart = chart_series(readings, metric, None, None, 40)
    return Views(
        whole=rows(readings.read_window(metric_id, None, None)),
        windows=[rows(readings.read_window(metric_id, a, b)) for a, b in cuts],
        newest=[
            rows(readings.read_window(metric_id, None, None, limit=k, newest=True))
            for k in (1, 10, 100)
        ]
        + [rows(readings.read_window(metric_id, None, None, limit=k)) for k in (1, 10, 100)],
        pages=pages,
        firsts=[readings.first_timestamp(metric_id, a, b) for a, b in cuts],
        buckets=[
            _buckets(readings.window_buckets(metric_id, lo, hi + 1, width))
            for width in (1, MINUTE, 7 * MINUTE + 3, (hi - lo) // 3 + 1)
        ],
        chart=(
            chart.timestamps_ms.tolist(),
            chart.low.tolist(),
            chart.high.tolist(),
            chart.count.tolist(),
        ),
    )


def _buckets(b: object) -> tuple[list[int], list[float], list[float], list[int]]:
    return (b.index.tolist(), b.low.tolist(), b.high.tolist(), b.readings.tolist())  # type: ignore[attr-defined]


def random_readings(
    rng: random.Random, n: int, start_ms: int, prefix: str = ""
) -> list[NewReading]:
    """A series with the shapes real ones have: gaps, readings sharing a time, decimal and
    noisy values, ids of several kinds (none, numbered, random text), each id naming one
    reading (a client that reuses an id for another time is not a retry: see
    ReadingRepository.merge_into_history)."""
    out = []
    t = start_ms
    for i in range(n):
        t += rng.choice([0, MINUTE, MINUTE, MINUTE, 2 * MINUTE, 7, 3 * MINUTE + 11])
        value = rng.choice(
            [round(rng.gauss(50, 5), 2), float(rng.randint(0, 9)), rng.random() * 1e6, -0.5, 1e300]
        )
        kind = rng.random()
        if kind < 0.5:
            rid = reading_id(t, value)
        elif kind < 0.8:
            rid = f"{prefix}host-{t}"
        elif kind < 0.9:
            rid = f"{prefix}seq{i}"
        else:
            rid = prefix + "".join(rng.choice("ab7é-") for _ in range(rng.randint(1, 12))) + f"/{i}"
        out.append(NewReading(rid, t, value))
    return out


def expected_after(stored: dict[str, NewReading], batch: list[NewReading]) -> None:
    """What storing a batch does: a new id is stored, a known one refused (first wins)."""
    for reading in batch:
        stored.setdefault(reading.id, reading)


def model_rows(
    stored: dict[str, NewReading], since: int | None = None
) -> list[tuple[str, int, float]]:
    kept = [r for r in stored.values() if since is None or r.timestamp_ms >= since]
    return [
        (r.id, r.timestamp_ms, r.value) for r in sorted(kept, key=lambda r: (r.timestamp_ms, r.id))
    ]


def as_read(want: list[tuple[str, int, float]], engine: str) -> list[tuple[str, int, float]]:
    if engine == "neo4j":
        return want
    # FalkorDB answers values with 15 significant digits: what every read path says alike.
    return [(i, t, float(f"{v:.15g}")) for i, t, v in want]


@pytest.mark.parametrize("seed", range(6))
def test_compaction_then_every_read_path_reads_the_same(
    graph: Repositories, engine: str, small_chunks: None, seed: int
) -> None:
    rng = random.Random(seed)
    owner, metric_id = make_metric(graph)
    series = random_readings(rng, rng.randint(1, 260), T0)
    stored: dict[str, NewReading] = {}
    shuffled = series[:]
    rng.shuffle(shuffled)
    for first in range(0, len(shuffled), 37):
        graph.readings.append(metric_id, shuffled[first : first + 37])
        expected_after(stored, shuffled[first : first + 37])
    span = (T0, max(r.timestamp_ms for r in series))
    before = views(graph, owner.id, metric_id, span)
    assert before.whole == as_read(model_rows(stored), engine)

    # Compact in two steps (a boundary in the middle, then near the end).
    for boundary in (span[0] + (span[1] - span[0]) // 2, span[1] - 5 * MINUTE):
        compact(graph, owner.id, metric_id, boundary)
        assert views(graph, owner.id, metric_id, span) == before
        assert check_chain(graph.readings, metric_id).ok
    through = graph.readings.boundary(metric_id)
    assert through is not None or len(series) < 3

    # Late readings: new ones in the compacted past and in the raw window, and re-sent ones.
    late = random_readings(rng, 40, T0 - 10 * MINUTE, prefix="late")
    resent = [
        NewReading(r.id, r.timestamp_ms, r.value + 1)
        for r in rng.sample(series, min(20, len(series)))
    ]
    batch = late + resent
    rng.shuffle(batch)
    stored_before = len(stored)
    expected_after(stored, batch)
    assert graph.readings.append(metric_id, batch) == len(stored) - stored_before
    assert graph.readings.append(metric_id, batch) == 0  # all of them again: all duplicates
    span = (min(span[0], T0 - 10 * MINUTE), max(span[1], *(r.timestamp_ms for r in late)))
    after_late = views(graph, owner.id, metric_id, span)
    assert after_late.whole == as_read(model_rows(stored), engine)
    assert check_chain(graph.readings, metric_id).ok

    # Compacting everything but the newest changes no read either.
    compact(graph, owner.id, metric_id, span[1] + 1)
    assert views(graph, owner.id, metric_id, span) == after_late

    # Retention deletes exactly what is older than its cutoff.
    cutoff = rng.randint(span[0], span[1])
    report = MaintenanceReport()
    apply_retention(graph.readings, metric_id, cutoff, report)
    kept = rows(graph.readings.read_window(metric_id, None, None))
    assert kept == as_read(model_rows(stored, cutoff), engine)
    assert check_chain(graph.readings, metric_id).ok


def test_anomalies_keep_their_reading_through_compaction_and_retention(
    graph: Repositories, small_chunks: None
) -> None:
    owner, metric_id = make_metric(graph)
    series = [NewReading(f"r{i}", T0 + i * MINUTE, float(i)) for i in range(100)]
    graph.readings.append(metric_id, series)
    flagged = anomaly_at(metric_id, "r10", timestamp_ms=T0 + 10 * MINUTE)
    assert len(graph.anomalies.save(metric_id, [flagged])) == 1
    compact(graph, owner.id, metric_id, T0 + 50 * MINUTE)
    # A job over the compacted past flags a reading that is no node any more: stored too.
    later = anomaly_at(metric_id, "r20", timestamp_ms=T0 + 20 * MINUTE)
    assert len(graph.anomalies.save(metric_id, [later])) == 1
    apply_retention(graph.readings, metric_id, T0 + 30 * MINUTE, MaintenanceReport())
    assert graph.readings.first_timestamp(metric_id, None, None) == T0 + 30 * MINUTE
    found = graph.anomalies.list_page(metric_id, KeysetPage(None, None, 10))
    assert [(a.reading_id, a.value, a.expected) for a in found] == [
        ("r10", 9.0, 1.0),
        ("r20", 9.0, 1.0),
    ]


def test_deleting_a_metric_deletes_its_chunks(graph: Repositories, small_chunks: None) -> None:
    owner, metric_id = make_metric(graph)
    graph.readings.append(metric_id, [NewReading(f"r{i}", T0 + i, 1.0) for i in range(100)])
    compact(graph, owner.id, metric_id, T0 + 90)
    assert len(graph.readings.history(metric_id, None, None).chunks) > 1
    assert graph.metrics.delete(owner.id, metric_id)
    assert graph.readings.history(metric_id, None, None).chunks == []


def test_a_late_reading_splits_a_chunk_grown_too_big(
    graph: Repositories, small_chunks: None
) -> None:
    owner, metric_id = make_metric(graph)
    graph.readings.append(metric_id, [NewReading(f"r{i}", T0 + 10 * i, 1.0) for i in range(40)])
    compact(graph, owner.id, metric_id, T0 + 390)
    [first, *_] = graph.readings.history(metric_id, None, None).chunks
    late = [NewReading(f"late{i}", T0 + 10 * i + 5, 2.0) for i in range(first.readings)]
    assert graph.readings.append(metric_id, late) == len(late)
    sizes = [c.readings for c in graph.readings.history(metric_id, None, None).chunks]
    assert max(sizes) <= codec.CHUNK_READINGS_MAX and sum(sizes) == 39 + len(late)
    window = graph.readings.read_window(metric_id, None, None)
    assert window.timestamps_ms.tolist() == sorted(window.timestamps_ms.tolist())
    assert len(window) == 40 + len(late)


def test_a_splice_older_than_the_boundary_goes_into_its_chunk_on_the_next_attempt(
    graph: Repositories, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, metric_id = make_metric(graph)
    graph.readings.append(
        metric_id, [NewReading(f"r{i}", T0 + i * MINUTE, float(i)) for i in range(40)]
    )
    compact(graph, owner.id, metric_id, T0 + 30 * MINUTE)
    late = NewReading("late", T0 + 10 * MINUTE + 1, 5.0)
    # The chain statement itself refuses it, neighbours or not: r30 is the chain's first
    # reading and `late` would fit before it, but it is older than the boundary.
    assert graph.readings._write([Gap(metric_id, [late], before_id="r30")]) == {}
    assert check_chain(graph.readings, metric_id).readings == 10

    # An append that looked before compaction moved the boundary (the boundary read
    # answers "nothing compacted" once) has its splice refused, then merges it.
    real = ReadingRepository._older_than_boundary
    stale = iter([True])
    monkeypatch.setattr(
        ReadingRepository,
        "_older_than_boundary",
        lambda self, pending, known: {} if next(stale, False) else real(self, pending, known),
    )
    assert graph.readings.append(metric_id, [late]) == 1
    assert graph.readings.append(metric_id, [late]) == 0
    chunks = graph.readings.history(metric_id, None, None).chunks
    assert sum(c.readings for c in chunks) == 31
    report = check_chain(graph.readings, metric_id)
    assert report.ok and report.readings == 10, report.problems
    window = rows(graph.readings.read_window(metric_id, T0 + 10 * MINUTE, T0 + 11 * MINUTE))
    assert window == [("r10", T0 + 10 * MINUTE, 10.0), ("late", T0 + 10 * MINUTE + 1, 5.0)]


def test_after_retention_emptied_a_metric_old_readings_go_to_chunks_new_ones_to_the_chain(
    graph: Repositories, small_chunks: None
) -> None:
    owner, metric_id = make_metric(graph)
    graph.readings.append(
        metric_id, [NewReading(f"r{i}", T0 + i * MINUTE, float(i)) for i in range(40)]
    )
    compact(graph, owner.id, metric_id, T0 + 40 * MINUTE)
    apply_retention(graph.readings, metric_id, T0 + 60 * MINUTE, MaintenanceReport())
    assert len(graph.readings.read_window(metric_id, None, None)) == 0
    through = graph.readings.boundary(metric_id)
    assert through == T0 + 39 * MINUTE  # the newest reading was left raw, then deleted

    old = NewReading("old", T0 + 5 * MINUTE, 1.0)
    new = NewReading("new", T0 + 90 * MINUTE, 2.0)
    assert graph.readings.append_many({metric_id: [new, old]}) == {metric_id: 2}
    assert rows(graph.readings.read_window(metric_id, None, None)) == [
        ("old", T0 + 5 * MINUTE, 1.0),
        ("new", T0 + 90 * MINUTE, 2.0),
    ]
    assert [c.readings for c in graph.readings.history(metric_id, None, None).chunks] == [1]
    report = check_chain(graph.readings, metric_id)
    assert report.ok and report.readings == 1, report.problems
    metric = graph.metrics.get(owner.id, metric_id)
    assert metric is not None and metric.latest_reading is not None
    assert metric.latest_reading.id == "new"


def test_chunks_written_as_base64_before_read_back_and_grow_in_base85(
    graph: Repositories, small_chunks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks stored before columns were base85 (base64 then) still read, and the next
    compaction rewrites the one it extends in base85."""
    owner, metric_id = make_metric(graph)
    values = [round(random.Random(5).uniform(-1e6, 1e6), 3) for _ in range(40)]
    graph.readings.append(
        metric_id,
        [NewReading(f"h-{T0 + i * MINUTE}", T0 + i * MINUTE, v) for i, v in enumerate(values)],
    )

    def stored_ids_column() -> str:
        [chunk] = graph.readings.history(metric_id, None, None).chunks
        columns = graph.readings.chunk_columns(metric_id, chunk)
        assert columns is not None and columns[2] is not None
        return columns[2]

    def readings() -> list[tuple[str, int, float]]:
        series = graph.readings.read_window(metric_id, None, None)
        times, values = series.timestamps_ms.tolist(), series.values.tolist()
        return list(zip(series.ids, times, values, strict=True))

    before = readings()
    assert len(before) == 40
    with monkeypatch.context() as old:
        old.setattr(codec, "_pack", lambda data: base64.b64encode(data).decode("ascii"))
        compact(graph, owner.id, metric_id, T0 + 10 * MINUTE)
    assert not stored_ids_column().startswith("!")
    assert readings() == before
    compact(graph, owner.id, metric_id, T0 + 14 * MINUTE)
    assert stored_ids_column().startswith("!")
    assert readings() == before


@pytest.mark.parametrize("size", [*range(12), 4095, 4096, 4097, 30_000])
def test_base85_is_the_standard_librarys(size: int) -> None:
    rng = random.Random(size)
    for data in (rng.randbytes(size), b"\xff" * size, bytes(size)):
        text = codec.b85encode(data)
        assert text == base64.b85encode(data).decode("ascii")
        assert codec.b85decode(text) == data
