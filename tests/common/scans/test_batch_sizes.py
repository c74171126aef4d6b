"""How a sweep cuts its metrics into batches: bounded by metrics and readings, a small sweep
spread over the worker processes, a fleet's batches kept large."""

from __future__ import annotations

from common.scans.batch import BatchEntry
from common.scans.sweep import MIN_BATCH_READINGS, SPREAD_BATCHES, batch_budget, pack
from common.settings import Settings


def entries(count: int, estimate: int, rebuild: bool = False) -> list[BatchEntry]:
    return [BatchEntry(f"m{i:05}", "owner", estimate, rebuild) for i in range(count)]


def batches(todo: list[BatchEntry], settings: Settings) -> list[list[BatchEntry]]:
    return pack(todo, batch_budget(todo, settings), settings.scan_batch_metrics)


def test_a_cold_start_of_few_long_histories_is_spread_over_the_workers() -> None:
    # 20 metrics with a week of 5-minute readings: 4 a batch would be 5 batches, so
    # 3 rounds on 2 worker processes where 20 jobs take 10.
    cut = batches(entries(20, 2016, rebuild=True), Settings())
    assert len(cut) == 20


def test_a_fleet_keeps_batches_of_the_most_metrics() -> None:
    cut = batches(entries(50_000, 1), Settings())
    assert [len(batch) for batch in cut] == [500] * 100


def test_a_small_sweep_keeps_batches_of_at_least_the_minimum() -> None:
    cut = batches(entries(1500, 1), Settings())
    assert [len(batch) for batch in cut] == [500] * 3
    small = entries(SPREAD_BATCHES * 10, 1)
    assert batch_budget(small, Settings()) == MIN_BATCH_READINGS
    assert len(batches(small, Settings())) == 1


def test_no_batch_holds_more_than_the_readings_budget() -> None:
    settings = Settings(scan_batch_readings=3000)
    todo = entries(40, 700) + entries(3, 5000, rebuild=True)
    cut = batches(todo, settings)
    budget = batch_budget(todo, settings)
    assert budget <= 3000
    for batch in cut:
        largest = max(entry.estimate for entry in batch)
        assert len(batch) == 1 or len(batch) * largest <= budget, batch
    assert sorted(e.metric_id for batch in cut for e in batch) == sorted(e.metric_id for e in todo)
    assert sum(1 for batch in cut if batch[0].estimate == 5000) == 3  # each above it alone
