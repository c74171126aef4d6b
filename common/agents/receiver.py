"""The agents' write path, the same for both protocols: decode, refuse what is over a
limit before anything is stored, name each series (mapping), turn counters into rates,
store, then remember the counters' last samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

from common.agents import otlp, remote_write
from common.agents.counters import CounterBases, LastSample, MetricTypes, to_rates
from common.agents.mapping import (
    OTLP_MAPPING,
    REMOTE_WRITE_MAPPING,
    MappingOptions,
    map_series,
)
from common.agents.series import AgentSeries, MappedSeries, ReceiveReport
from common.agents.storing import store_series
from common.errors import TooLargeError
from common.ingestion.models import IngestLimits, SeriesError
from common.metrics.repository import MetricRepository, ReadingRepository
from common.own_metrics import AGENT_SAMPLES, READINGS_INGESTED

MAX_LISTED = 20  # refused series named in an answer


@dataclass(frozen=True)
class AgentLimits:
    max_decoded_bytes: int
    max_samples: int
    max_readings_per_write: int  # readings per graph statement (MAX_BATCH_READINGS)
    ingest: IngestLimits


@dataclass
class AgentReceiver:
    metrics: MetricRepository
    readings: ReadingRepository
    counter_bases: CounterBases
    metric_types: MetricTypes
    limits: AgentLimits

    def remote_write(
        self,
        owner_id: str,
        body: bytes,
        content_encoding: str | None,
        options: MappingOptions = REMOTE_WRITE_MAPPING,
    ) -> ReceiveReport:
        """Store a Prometheus remote write request; what was refused is in the report."""
        request = remote_write.decode(body, content_encoding, self.limits.max_decoded_bytes)
        self._check_size(request.series, "remote_write")
        self.metric_types.remember(owner_id, request.types)
        names = sorted({s.name for s in request.series})
        types = {**self.metric_types.lookup(owner_id, names), **request.types}
        for series in request.series:
            series.counter = remote_write.is_counter(series.name, types)
        return self._receive(owner_id, request.series, options, "remote_write", ReceiveReport())

    def otlp(
        self,
        owner_id: str,
        body: bytes,
        content_type: str | None,
        content_encoding: str | None,
        options: MappingOptions = OTLP_MAPPING,
    ) -> ReceiveReport:
        """Store an OTLP/HTTP metrics export; rejected points are counted in the report."""
        decoded = otlp.decode(
            body,
            content_type,
            content_encoding,
            self.limits.max_decoded_bytes,
            options.resource_labels,
        )
        self._check_size(decoded.series, "otlp")
        report = ReceiveReport(rejected=decoded.rejected, errors=list(decoded.errors))
        return self._receive(owner_id, decoded.series, options, "otlp", report)

    def _check_size(self, batch: list[AgentSeries], path: str) -> None:
        samples = sum(len(s.values) for s in batch)
        if samples > self.limits.max_samples:
            hint = (
                "lower queue_config.max_samples_per_send"
                if path == "remote_write"
                else "lower the exporter's batch size (send_batch_max_size)"
            )
            raise TooLargeError(
                f"{samples} samples in {len(batch)} series in one request, over the limit of "
                f"{self.limits.max_samples} (AGENT_MAX_SAMPLES_PER_REQUEST); nothing was "
                f"stored: {hint}"
            )

    def _receive(
        self,
        owner_id: str,
        batch: list[AgentSeries],
        options: MappingOptions,
        path: str,
        report: ReceiveReport,
    ) -> ReceiveReport:
        report.series = len(batch)
        report.samples = sum(len(s.values) for s in batch)
        mapped = map_series(batch, options)
        for refused in mapped.refused:
            report.rejected += refused.samples
            if len(report.rejected_series) < MAX_LISTED:
                report.rejected_series.append(f"{refused.sent_as}: {refused.why}")
        ready = [s for s in mapped.series.values() if _finite_only(s, report)]
        counters = [s for s in ready if s.counter]
        keys = self.counter_bases.keys(owner_id, counters)
        new_bases: dict[tuple[str, str], tuple[str, LastSample]] = {}
        for key, series, base in zip(keys, counters, self.counter_bases.load(keys), strict=True):
            last, skipped = to_rates(series, base)
            report.skipped += skipped
            if last is not None and last != base:
                new_bases[series.key] = (key, last)
        to_store = [s for s in ready if s.values]
        outcome = store_series(
            self.metrics,
            self.readings,
            owner_id,
            to_store,
            self.limits.ingest,
            self.limits.max_readings_per_write,
        )
        report.stored, report.duplicates = outcome.stored, outcome.duplicates
        report.metrics_created = outcome.metrics_created
        for series, error in outcome.refused:
            new_bases.pop(series.key, None)  # its retry computes the same rates
            report.rejected += len(series.values)
            report.over_limit += error.reason == "metric_limit"
            if len(report.rejected_series) < MAX_LISTED:
                report.rejected_series.append(_refused(series, error))
        self.counter_bases.save(dict(new_bases.values()))
        READINGS_INGESTED.labels(path).inc(report.stored)
        for outcome_name, count in (
            ("stored", report.stored),
            ("duplicate", report.duplicates),
            ("skipped", report.skipped),
            ("rejected", report.rejected),
        ):
            AGENT_SAMPLES.labels(path, outcome_name).inc(count)
        return report


def _refused(series: MappedSeries, error: SeriesError) -> str:
    if error.reason == "metric_limit":  # the message names the series already
        return error.message
    return f"{series.service}/{series.metric}: {error.message}"


def _finite_only(series: MappedSeries, report: ReceiveReport) -> bool:
    """Drop staleness markers (a NaN) and other non-finite values: they are not readings."""
    if all(map(math.isfinite, series.values)):
        return True
    keep = [i for i, v in enumerate(series.values) if math.isfinite(v)]
    report.skipped += len(series.values) - len(keep)
    series.timestamps_ms = [series.timestamps_ms[i] for i in keep]
    series.values = [series.values[i] for i in keep]
    return bool(keep)
