"""Counters become per-second rates; the last sample is kept in Redis between requests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from common.agents.counters import CounterBases, LastSample, MetricTypes, to_rates
from common.agents.series import MappedSeries
from common.embedded import EmbeddedServer


def counter(timestamps: list[int], values: list[float]) -> MappedSeries:
    return MappedSeries("svc", "c_total", {}, True, list(timestamps), list(values))


def test_first_sample_is_the_base_then_rates_per_second() -> None:
    series = counter([0, 10_000, 20_000], [100.0, 150.0, 150.0])
    last, skipped = to_rates(series, None)
    assert (series.timestamps_ms, series.values) == ([10_000, 20_000], [5.0, 0.0])
    assert last == LastSample(20_000, 150.0)
    assert skipped == 1


def test_a_reset_counts_from_zero() -> None:
    series = counter([10_000, 20_000], [1000.0, 30.0])
    last, _ = to_rates(series, LastSample(0, 900.0))
    assert series.values == [10.0, 3.0]  # 100 in 10 s; then reset: 30 since zero in 10 s
    assert last == LastSample(20_000, 30.0)


def test_samples_not_after_the_base_are_skipped_and_order_does_not_matter() -> None:
    series = counter([30_000, 5_000, 20_000], [40.0, 1.0, 20.0])
    last, skipped = to_rates(series, LastSample(10_000, 10.0))
    assert (series.timestamps_ms, series.values) == ([20_000, 30_000], [1.0, 2.0])
    assert skipped == 1
    assert last == LastSample(30_000, 40.0)


@pytest.fixture
def client(embedded_server: EmbeddedServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(embedded_server.redis_url)
    yield connection
    connection.close()


def test_bases_saved_only_forward(client: redis.Redis) -> None:
    bases = CounterBases(client, ttl_seconds=60)
    owner = uuid.uuid4().hex
    [key] = bases.keys(owner, [counter([], [])])
    assert bases.load([key]) == [None]
    bases.save({key: LastSample(2_000, 7.5)})
    bases.save({key: LastSample(1_000, 1.0)})  # older: a late request must not rewind it
    assert bases.load([key]) == [LastSample(2_000, 7.5)]
    bases.save({key: LastSample(3_000, 0.1 + 0.2)})
    assert bases.load([key]) == [LastSample(3_000, 0.1 + 0.2)]  # exact float round trip
    assert 0 < int(client.ttl(key)) <= 60


def test_metadata_types_remembered_per_owner(client: redis.Redis) -> None:
    types = MetricTypes(client, ttl_seconds=60)
    owner, other = uuid.uuid4().hex, uuid.uuid4().hex
    types.remember(owner, {"process_cpu": "counter", "temperature_total": "gauge"})
    assert types.lookup(owner, ["process_cpu", "temperature_total", "x"]) == {
        "process_cpu": "counter",
        "temperature_total": "gauge",
    }
    assert types.lookup(other, ["process_cpu"]) == {}
