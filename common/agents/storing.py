"""Where the agents' readings go: ingest's one write path for readings of many metrics
(common.ingestion), with the series the agents have mapped. Services and metrics are
created on first sight, labels kept on the metric, up to the owner's MAX_METRICS_PER_OWNER.

Reading ids are the sample's epoch ms, so a request sent again (an agent retrying after a
timeout) stores nothing twice. A request is written in batches of at most
MAX_BATCH_READINGS readings (one graph statement each, as the REST API's), so that one
agent's big request does not hold the store from other tenants; should the store fail
between two batches, the agent's retry stores only what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from common.agents.series import MappedSeries
from common.ingestion.models import IngestLimits, Series, SeriesError
from common.ingestion.service import ingest
from common.metrics.models import NewReading
from common.metrics.repository import MetricRepository, ReadingRepository


@dataclass
class Stored:
    stored: int = 0
    duplicates: int = 0
    metrics_created: int = 0
    # Series ingest refused whole (over the metric limit, a label it does not take, ...).
    refused: list[tuple[MappedSeries, SeriesError]] = field(default_factory=list)


def _as_ingested(series: MappedSeries) -> Series:
    return Series(
        readings=[
            NewReading(id=str(ms), timestamp_ms=ms, value=value)
            for ms, value in zip(series.timestamps_ms, series.values, strict=True)
        ],
        service_name=series.service,
        metric_name=series.metric,
        labels=series.labels,
    )


def _batches(series: Sequence[MappedSeries], max_readings: int) -> Iterator[list[MappedSeries]]:
    """Whole series, at most `max_readings` readings a batch (a longer series alone)."""
    batch: list[MappedSeries] = []
    readings = 0
    for one in series:
        if batch and readings + len(one.values) > max_readings:
            yield batch
            batch, readings = [], 0
        batch.append(one)
        readings += len(one.values)
    if batch:
        yield batch


def store_series(
    metrics: MetricRepository,
    readings: ReadingRepository,
    owner_id: str,
    series: Sequence[MappedSeries],
    limits: IngestLimits,
    max_readings_per_write: int,
) -> Stored:
    outcome = Stored()
    for batch in _batches(series, max_readings_per_write):
        report = ingest(
            metrics,
            readings,
            owner_id,
            [_as_ingested(one) for one in batch],
            create_missing=True,
            limits=limits,
        )
        outcome.stored += report.stored
        outcome.duplicates += report.duplicates
        outcome.metrics_created += report.metrics_created
        outcome.refused += [
            (one, result.error)
            for one, result in zip(batch, report.series, strict=True)
            if result.error is not None
        ]
    return outcome
