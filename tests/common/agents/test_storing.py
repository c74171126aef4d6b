"""The agents' series go through ingest's batch write path, in bounded batches."""

from __future__ import annotations

from collections.abc import Callable

from common.agents.series import MappedSeries
from common.agents.storing import store_series
from common.ingestion.models import IngestLimits
from common.stores import Repositories
from common.users.models import User

T0 = 1_780_000_000_000
LIMITS = IngestLimits(max_metrics_per_owner=100, max_clock_skew_seconds=600)


def gauge(metric: str, count: int, labels: dict[str, str] | None = None) -> MappedSeries:
    stamps = [T0 + i * 1000 for i in range(count)]
    return MappedSeries("node", metric, labels or {}, False, stamps, [float(i) for i in stamps])


def test_series_are_written_whole_in_batches_and_sent_again_store_nothing_twice(
    store: Repositories, make_user: Callable[..., tuple[User, str]]
) -> None:
    owner, _ = make_user("batches")
    series = [gauge('a{x="1"}', 2, {"x": "1"}), gauge("b", 2), gauge("c", 5), gauge("d", 1)]
    # At most 3 readings a batch: [a], [b], [c] (longer, alone), [d].
    first = store_series(store.metrics, store.readings, owner.id, series, LIMITS, 3)
    assert (first.stored, first.duplicates, first.metrics_created) == (10, 0, 4)
    assert first.refused == []
    again = store_series(store.metrics, store.readings, owner.id, series, LIMITS, 3)
    assert (again.stored, again.duplicates, again.metrics_created) == (0, 10, 0)

    [service] = store.services.list_owned(owner.id)
    metrics = {m.name: m for m in store.metrics.list_in_service(owner.id, service.id)}
    assert sorted(metrics) == ['a{x="1"}', "b", "c", "d"]
    assert metrics['a{x="1"}'].labels == {"x": "1"}
    assert len(store.readings.chain(metrics["c"].id).links) == 5


def test_a_series_past_the_metric_limit_is_refused_and_the_others_stored(
    store: Repositories, make_user: Callable[..., tuple[User, str]]
) -> None:
    owner, _ = make_user("limited")
    limits = IngestLimits(max_metrics_per_owner=2, max_clock_skew_seconds=600)
    series = [gauge("a", 1), gauge("b", 1), gauge("c", 2)]
    outcome = store_series(store.metrics, store.readings, owner.id, series, limits, 1000)
    assert outcome.stored == 2
    [(refused, error)] = outcome.refused
    assert refused.metric == "c" and error.reason == "metric_limit"
    assert "MAX_METRICS_PER_OWNER" in error.message
