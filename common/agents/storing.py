"""Where the agents' readings go into the graph: services and metrics found by name or
created on first sight, then each metric's readings appended.

Reading ids are the sample's epoch ms, so a request sent again (an agent retrying after a
timeout) stores nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from common.agents.series import MappedSeries
from common.errors import ConflictError
from common.metrics.models import NewReading
from common.metrics.repository import MetricRepository, ReadingRepository
from common.services.repository import ServiceRepository


@dataclass
class Stored:
    stored: int = 0
    duplicates: int = 0
    metrics_created: int = 0


def store_series(
    services: ServiceRepository,
    metrics: MetricRepository,
    readings: ReadingRepository,
    owner_id: str,
    batch: Sequence[MappedSeries],
) -> Stored:
    outcome = Stored()
    if not batch:  # metadata only, or nothing left to store: no graph round trip
        return outcome
    service_ids = {s.name: s.id for s in services.list_owned(owner_id)}
    for series in batch:
        service_id = service_ids.get(series.service)
        if service_id is None:
            service_id = services.create(owner_id, series.service, None).id
            service_ids[series.service] = service_id
        metric = metrics.find_by_name(owner_id, service_id, series.metric)
        if metric is None:
            try:
                metric = metrics.create(owner_id, service_id, series.metric, None)
                outcome.metrics_created += 1
            except ConflictError:  # created by a concurrent request
                metric = metrics.find_by_name(owner_id, service_id, series.metric)
        if metric is None:
            continue
        new = [
            NewReading(id=str(ms), timestamp_ms=ms, value=value)
            for ms, value in zip(series.timestamps_ms, series.values, strict=True)
        ]
        stored = readings.append(metric.id, new)
        outcome.stored += stored
        outcome.duplicates += len(new) - stored
    return outcome
