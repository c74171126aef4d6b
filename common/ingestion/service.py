"""The one write path for readings of many metrics: the REST API's `POST /api/readings`, and
the agents' receivers (Prometheus remote_write, OTLP) with the series they have mapped.

The contract, for any caller:

    report = ingest(repositories.metrics, repositories.readings, owner_id, series,
                    create_missing=True, limits=ingest_limits(settings))

- `series`: a `Series` per metric: the metric named by `metric_id`, or by its service
  (`service_id`, or else `service_name`) and `metric_name`; `labels` (at most 64; names up
  to 100 characters, values up to 1,000) are stored on a metric the request creates.
  Readings (`NewReading`): an id (a sender without ids of its own uses something the
  reading determines, e.g. its epoch ms as text, so that a retry stores nothing twice),
  epoch ms from 1970 up to MAX_CLOCK_SKEW_SECONDS ahead of the server's clock, a finite
  value at most 1e308 in size. Names: 1-100 characters, ids 1-200, no control characters.
- `create_missing`: metrics (and services, by name) the owner does not have are created,
  in request order, while the owner has fewer than MAX_METRICS_PER_OWNER metrics.
- Each series is stored whole or refused whole, and a refused one does not stop the
  others: `report.series[i].error` says why (its `status` is what the refusal alone would
  answer over HTTP: 404, 409, 422 or 429). A metric is named by one series per request.
- Idempotent: a reading whose id is stored for its metric is counted under `duplicates`,
  not stored again; a retried request creates no metric twice and stores no reading twice.
- Bounded by the caller (the API: MAX_BATCH_READINGS readings in all): the readings of all
  series go into the graph in one statement, which finds the metrics named by id itself
  (the owner checked there). Before it, one read finds those named by name (only if a
  series names one so), and one write creates the missing metrics (only if there are any).
  A read and a second statement run only for readings that are not the newest of their
  metric (late or re-sent ones), and when another client appended to the same metric at
  the same moment.
- Errors that are not one series' (the graph store down) raise, and then nothing of the
  request is stored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from common.epoch import from_epoch_ms, now_ms
from common.ingestion.models import (
    MAX_LABEL_NAME_CHARS,
    MAX_LABEL_VALUE_CHARS,
    MAX_LABELS,
    IngestLimits,
    IngestReport,
    Reason,
    Series,
    SeriesError,
    SeriesOutcome,
)
from common.metrics.models import MAX_VALUE, FoundMetric, NewReading, ServiceKey, WantedMetric
from common.metrics.repository import MetricRepository, ReadingRepository, metric_limit_message
from common.settings import Settings

MAX_NAME_CHARS = 100  # service and metric names (the API's rule)
MAX_ID_CHARS = 200  # metric and reading ids
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

STATUS: dict[Reason, int] = {
    "invalid": 422,
    "future_timestamp": 422,
    "duplicate_series": 422,
    "not_found": 404,
    "ambiguous_service": 409,
    "metric_limit": 429,
}


def ingest_limits(settings: Settings) -> IngestLimits:
    return IngestLimits(settings.max_metrics_per_owner, settings.max_clock_skew_seconds)


def refusal(reason: Reason, message: str) -> SeriesError:
    return SeriesError(status=STATUS[reason], reason=reason, message=message)


def future_reading(readings: Sequence[NewReading], now: int, limits: IngestLimits) -> str | None:
    """Why the first reading stamped beyond the clock skew is refused, if one is."""
    latest_allowed = now + limits.max_clock_skew_seconds * 1000
    if not readings or max(r.timestamp_ms for r in readings) <= latest_allowed:
        return None
    for position, reading in enumerate(readings):
        if reading.timestamp_ms > latest_allowed:
            return (
                f"reading {position} (id {reading.id!r}) is stamped "
                f"{from_epoch_ms(reading.timestamp_ms).isoformat()}, more than "
                f"{limits.max_clock_skew_seconds} s (MAX_CLOCK_SKEW_SECONDS) ahead of the "
                f"server's clock ({from_epoch_ms(now).isoformat()}): check the sender's clock"
            )
    return None


def _bad_name(what: str, name: str | None, most: int = MAX_NAME_CHARS) -> str | None:
    if name is None:
        return None
    if not 1 <= len(name) <= most or _CONTROL.search(name):
        return f"{what} must be 1 to {most} characters without control characters"
    return None


def _naming_problem(series: Series) -> str | None:
    by_service = series.service_id is not None or series.service_name is not None
    if series.metric_id is not None:
        if by_service or series.metric_name is not None:
            return "name the metric by metric_id, or by its service and metric_name: not both"
        return _bad_name("metric_id", series.metric_id, MAX_ID_CHARS)
    if series.metric_name is None or not by_service:
        return "name the metric by metric_id, or by service_id or service_name and metric_name"
    if series.service_id is not None and series.service_name is not None:
        return "name the service by service_id or by service_name: not both"
    return (
        _bad_name("service_id", series.service_id, MAX_ID_CHARS)
        or _bad_name("service_name", series.service_name)
        or _bad_name("metric_name", series.metric_name)
    )


def _labels_problem(series: Series) -> str | None:
    if len(series.labels) > MAX_LABELS:
        return f"a metric has at most {MAX_LABELS} labels; got {len(series.labels)}"
    for name, value in series.labels.items():
        problem = _bad_name("a label's name", name, MAX_LABEL_NAME_CHARS)
        if problem:
            return problem
        if len(value) > MAX_LABEL_VALUE_CHARS or _CONTROL_BUT_LINE_BREAKS.search(value):
            return (
                f"label {name!r}: a value is at most {MAX_LABEL_VALUE_CHARS} characters, "
                "without control characters but tab and line breaks"
            )
    return None


def _readings_problem(readings: Sequence[NewReading]) -> str | None:
    # The whole series at once first (what a valid series costs), reading by reading only
    # to say which one is wrong.
    if not readings:
        return None
    ids = [r.id for r in readings]
    values = [r.value for r in readings]
    lengths = list(map(len, ids))
    if (
        min(lengths) >= 1
        and max(lengths) <= MAX_ID_CHARS
        and not _CONTROL.search("".join(ids))
        and all(map(math.isfinite, values))
        and max(map(abs, values)) <= MAX_VALUE
        and min(r.timestamp_ms for r in readings) >= 0
    ):
        return None
    for position, reading in enumerate(readings):
        if not 1 <= len(reading.id) <= MAX_ID_CHARS or _CONTROL.search(reading.id):
            return f"reading {position}: an id is 1 to {MAX_ID_CHARS} characters, no control ones"
        if not math.isfinite(reading.value) or abs(reading.value) > MAX_VALUE:
            return f"reading {position}: a value must be finite and at most 1e308 in size"
        if reading.timestamp_ms < 0:
            return f"reading {position}: stamped before 1970"
    return None


def check_series(series: Series, now: int, limits: IngestLimits) -> SeriesError | None:
    """Why the series is refused before anything is looked up, if it is."""
    problem = _naming_problem(series) or _labels_problem(series)
    problem = problem or _readings_problem(series.readings)
    if problem:
        return refusal("invalid", problem)
    future = future_reading(series.readings, now, limits)
    return None if future is None else refusal("future_timestamp", future)


@dataclass
class _Targets:
    """The metric each series' readings go to, found or to be created."""

    found: dict[int, FoundMetric] = field(default_factory=dict)
    # Series named by id whose metric is looked up by the append itself (the owner checked
    # there): `found` holds them with no newest reading known.
    unread: set[int] = field(default_factory=set)
    # Per metric the owner lacks: the series naming it, and how to create it.
    wanted: dict[tuple[ServiceKey, str], tuple[list[int], WantedMetric]] = field(
        default_factory=dict
    )


def ingest(
    metrics: MetricRepository,
    readings: ReadingRepository,
    owner_id: str,
    series: Sequence[Series],
    *,
    create_missing: bool,
    limits: IngestLimits,
) -> IngestReport:
    """Store each series' readings in its metric's chain (the module's docstring is the
    contract); what became of each series is in the report, in request order."""
    now = now_ms()
    outcomes = [
        SeriesOutcome(
            index=i, metric_id=None, received=len(s.readings), ids=[r.id for r in s.readings]
        )
        for i, s in enumerate(series)
    ]
    for outcome, one in zip(outcomes, series, strict=True):
        outcome.error = check_series(one, now, limits)
    valid = [i for i, outcome in enumerate(outcomes) if outcome.error is None]
    targets = _Targets()
    by_id = [i for i in valid if series[i].metric_id is not None]
    by_name = [i for i in valid if series[i].metric_id is None]
    # A metric named by id is found by the append that stores its readings (one statement
    # where a lookup and the append were two: a fleet's minute reads nothing first); one
    # whose series has no readings, by a lookup.
    for i in by_id:
        if series[i].readings:
            targets.found[i] = FoundMetric(series[i].metric_id or "", None)
            targets.unread.add(i)
    _find_by_id(
        metrics, owner_id, series, [i for i in by_id if i not in targets.unread], outcomes, targets
    )
    _find_by_name(metrics, owner_id, series, by_name, outcomes, targets, create_missing)
    if targets.wanted:
        _create(metrics, owner_id, limits, outcomes, targets)
    batches: dict[str, Sequence[NewReading]] = {}
    latest: dict[str, tuple[int, str] | None] = {}
    first_series: dict[str, int] = {}
    for index, target in sorted(targets.found.items()):
        outcome = outcomes[index]
        outcome.metric_id = target.id
        if target.id in first_series:
            outcome.error = refusal(
                "duplicate_series",
                f"series {first_series[target.id]} names the same metric: send a metric's "
                "readings in one series",
            )
            continue
        first_series[target.id] = index
        outcome.created = target.created
        batches[target.id] = series[index].readings
        if index not in targets.unread:
            latest[target.id] = target.latest
    stored = readings.append_many(batches, latest, owner_id)
    for index, target in targets.found.items():
        if target.id not in stored:  # named by id: not the owner's, or no such metric
            outcomes[index].metric_id = None
            outcomes[index].error = refusal("not_found", f"metric {target.id} not found")
    for metric_id, index in first_series.items():
        outcome = outcomes[index]
        if metric_id in stored:
            outcome.stored = stored[metric_id]
            outcome.duplicates = outcome.received - outcome.stored
    return IngestReport.of(outcomes)


def _find_by_id(
    metrics: MetricRepository,
    owner_id: str,
    series: Sequence[Series],
    indexes: list[int],
    outcomes: list[SeriesOutcome],
    targets: _Targets,
) -> None:
    if not indexes:
        return
    found = metrics.find_by_ids(owner_id, sorted({series[i].metric_id or "" for i in indexes}))
    for i in indexes:
        metric_id = series[i].metric_id or ""
        if metric_id in found:
            targets.found[i] = found[metric_id]
        else:
            outcomes[i].error = refusal("not_found", f"metric {metric_id} not found")


def _find_by_name(
    metrics: MetricRepository,
    owner_id: str,
    series: Sequence[Series],
    indexes: list[int],
    outcomes: list[SeriesOutcome],
    targets: _Targets,
    create_missing: bool,
) -> None:
    if not indexes:
        return
    by_service: dict[ServiceKey, dict[str, list[int]]] = {}
    for i in indexes:
        one = series[i]
        key: ServiceKey = (one.service_id, None if one.service_id else one.service_name)
        by_service.setdefault(key, {}).setdefault(one.metric_name or "", []).append(i)
    keys = list(by_service)
    rows = metrics.find_by_names(owner_id, keys, [list(by_service[k]) for k in keys])
    service_ids: dict[int, set[str]] = {}
    named: dict[tuple[int, str], FoundMetric] = {}
    for row in rows:
        service_ids.setdefault(row.service, set()).add(row.service_id)
        if row.metric is not None:
            named[(row.service, row.name)] = row.metric
    for k, key in enumerate(keys):
        service_id, service_name = key
        shown = service_id or service_name
        for name, indexes_named in by_service[key].items():
            error = None
            if len(service_ids.get(k, ())) > 1:
                error = refusal(
                    "ambiguous_service",
                    f"you have {len(service_ids[k])} services named {service_name!r}: "
                    "name the service by service_id",
                )
            elif (k, name) in named:
                for i in indexes_named:
                    targets.found[i] = named[(k, name)]
                continue
            elif service_id is not None and k not in service_ids:
                error = refusal("not_found", f"service {service_id} not found")
            elif not create_missing:
                missing = (
                    f"service {shown!r} has no metric named {name!r}"
                    if k in service_ids
                    else f"you have no service named {shown!r}"
                )
                error = refusal("not_found", f'{missing}; send "create_missing": true to create it')
            if error is not None:
                for i in indexes_named:
                    outcomes[i].error = error
                continue
            labels = dict(series[indexes_named[0]].labels)
            targets.wanted[(key, name)] = (
                indexes_named,
                WantedMetric(service_id, service_name, name, labels),
            )


def _create(
    metrics: MetricRepository,
    owner_id: str,
    limits: IngestLimits,
    outcomes: list[SeriesOutcome],
    targets: _Targets,
) -> None:
    wanted = list(targets.wanted.values())
    created = metrics.create_missing(owner_id, [w for _, w in wanted], limits.max_metrics_per_owner)
    for (indexes, want), metric, services in zip(
        wanted, created.metrics, created.services, strict=True
    ):
        if metric is not None:
            for i in indexes:
                targets.found[i] = metric
            continue
        # The lookup before found the service as this needs it; a request of the same owner
        # may have changed that since.
        service = want.service_id or want.service_name
        if services > 1:
            error = refusal("ambiguous_service", f"you have {services} services named {service!r}")
        elif services == 0 and want.service_id is not None:
            error = refusal("not_found", f"service {service} not found")
        else:
            error = refusal(
                "metric_limit",
                f"series {service}/{want.name} refused: "
                + metric_limit_message(limits.max_metrics_per_owner, created.owned),
            )
        for i in indexes:
            outcomes[i].error = error
