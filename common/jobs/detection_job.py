"""The work of one detection job, called by the `neonomaly.detect` task.

Safe to run more than once for the same job id (a redelivered message, a retry): the
window was fixed at submission, the result is overwritten with the same content, and the
graph store merges anomalies on (reading, method). A job already final is left alone.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import numpy as np

from common.detection import DEFAULT_SIGMA, DetectionError, DetectionResult, detect
from common.errors import NotFoundError
from common.graph.store import GraphStore
from common.incidents.building import build_incidents
from common.jobs.models import JobRecord, JobSummary, LatestVerdict
from common.jobs.record_store import JobStore
from common.jobs.result_store import ResultStore
from common.jobs.results import encode_result
from common.models import AnomalyPoint, ReadingSeries, from_epoch_ms, to_epoch_ms
from common.settings import Settings

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_detection_job(
    job_id: str, store: GraphStore, jobs: JobStore, results: ResultStore, settings: Settings
) -> JobRecord | None:
    """Run the job to a final state and return its record (None: no such job, or expired).

    Detection errors (too few readings, say) fail the job with their message. Graph or
    Redis outages propagate as DependencyUnavailableError, for the task to retry.
    """
    record = jobs.get(job_id)
    if record is None:
        log.warning("job %s has no record (expired, or never submitted); nothing to do", job_id)
        return None
    if record.is_final:
        return record
    if record.attempts >= settings.job_max_attempts:
        return jobs.mark_failed(
            job_id,
            f"the job was started {record.attempts} times and its worker died each time "
            "(out of memory, or killed): not trying again. Try a shorter window.",
        )
    running = jobs.mark_running(job_id, worker_name())
    if running is None or running.is_final:
        return running
    if settings.job_start_delay_seconds:
        time.sleep(settings.job_start_delay_seconds)
    try:
        return _detect(running, store, jobs, results, settings)
    except DetectionError as exc:
        return jobs.mark_failed(job_id, str(exc))
    except NotFoundError as exc:
        return jobs.mark_failed(job_id, str(exc))


def _detect(
    record: JobRecord, store: GraphStore, jobs: JobStore, results: ResultStore, settings: Settings
) -> JobRecord | None:
    params = record.params
    metric = store.get_metric_ref(record.metric_id)
    if metric is None:
        raise NotFoundError(
            f"metric {record.metric_id} no longer exists (deleted after submission)"
        )
    series = store.read_window(
        metric.id, params.start, params.end, limit=params.max_points, newest=True
    )
    jobs.set_progress(record.id, 0.3)
    if len(series) == 0:
        return jobs.mark_failed(
            record.id,
            f"metric {metric.id} has no readings in the window "
            f"[{_moment(params.start)}, {_moment(params.end)}): add readings or widen the window",
        )
    output = detect(
        series.values,
        series.timestamps_ms,
        method=params.method,
        online=params.online,
        sigma=params.sigma,
        window=params.window,
        robust=params.robust,
        period=params.period,
        sensitivity=params.sensitivity,
        quiet=params.quiet,
    )
    jobs.set_progress(record.id, 0.7)
    method = output.method + ("-online" if params.online else "")
    # The names as they are now, so that a plot of the result needs no graph read.
    service = store.get_service(metric.owner_id, metric.service_id)
    meta, chunks = encode_result(
        record.id,
        metric.id,
        series,
        output,
        method,
        service_name=None if service is None else service.name,
        metric_name=metric.name,
    )
    expires_at = results.save(meta, chunks)
    judge_from_ms = None if params.judge_from is None else to_epoch_ms(params.judge_from)
    points = anomaly_points(series, output, method, judge_from_ms)
    stored = store.save_anomalies(metric.id, points, record.id)
    # Before the job succeeds: if this fails, the retried job (idempotent) does it again.
    build_incidents(store, metric, points, settings)
    summary = JobSummary(
        method=method,
        method_params=meta.method_params,
        points=len(series),
        flagged=meta.flagged,
        events=len(meta.events),
        anomalies_stored=stored,
        window_start=from_epoch_ms(int(series.timestamps_ms[0])),
        window_end=from_epoch_ms(int(series.timestamps_ms[-1])),
        latest=latest_verdict(series, output, params.sigma or DEFAULT_SIGMA),
    )
    return jobs.mark_succeeded(record.id, summary, expires_at)


def _moment(moment: object) -> str:
    return "…" if moment is None else str(moment)


def _finite(value: float, fallback: float) -> float:
    return value if np.isfinite(value) else fallback


def anomaly_points(
    series: ReadingSeries, output: DetectionResult, method: str, judge_from_ms: int | None
) -> list[AnomalyPoint]:
    """The flagged readings as graph anomalies, each with the span of its event.

    With `judge_from_ms` (scans), readings before it were history for the online judge,
    already scanned before: they are not stored again.
    """
    event_of = np.full(len(series), -1, dtype=np.int64)
    for number, event in enumerate(output.events):
        event_of[event.start_index : event.end_index + 1] = number
    flagged = np.flatnonzero(np.asarray(output.is_anomaly, dtype=bool))
    if judge_from_ms is not None:
        flagged = flagged[series.timestamps_ms[flagged] >= judge_from_ms]
    points = []
    # bound_at: the store converts these datetimes back to the readings' exact milliseconds.
    for index in flagged:
        value = float(series.values[index])
        event_number = int(event_of[index])
        kind = None
        if event_number >= 0:
            event = output.events[event_number]
            start_ms = int(series.timestamps_ms[event.start_index])
            end_ms = int(series.timestamps_ms[event.end_index])
            kind = event.kind
        else:  # a flag outside any event should not happen; the point is its own event
            start_ms = end_ms = int(series.timestamps_ms[index])
        points.append(
            AnomalyPoint(
                reading_id=series.ids[index],
                timestamp=from_epoch_ms(int(series.timestamps_ms[index])),
                value=value,
                expected=_finite(float(output.expected[index]), value),
                lower=_finite(float(output.lower[index]), value),
                upper=_finite(float(output.upper[index]), value),
                # A zero spread gives an infinite score; the graph and JSON want a number.
                score=_finite(float(output.score[index]), float(np.finfo(np.float64).max)),
                method=method,
                event_start=from_epoch_ms(start_ms),
                event_end=from_epoch_ms(end_ms),
                probability=_finite(float(output.probability[index]), 0.0),
                kind=kind.name if kind else None,
                summary=kind.summary if kind else None,
            )
        )
    return points


def latest_verdict(series: ReadingSeries, output: DetectionResult, sigma: float) -> LatestVerdict:
    """The seed's rule on the newest reading, next to what the job's method said of it."""
    values = series.values
    # Readings near the float limit (1e308) overflow a plain sum to inf, which JSON stores
    # as null and the job record then refuses: compute on values scaled to at most 1.
    size = float(np.max(np.abs(values)))
    scaled = values / size if size > 0 else values
    largest = float(np.finfo(np.float64).max)
    mean = float(np.clip(np.mean(scaled) * size if size > 0 else 0.0, -largest, largest))
    # Cypher's stDev, which the seed used, is the sample standard deviation.
    spread = float(np.std(scaled, ddof=1)) * size if len(values) > 1 and size > 0 else 0.0
    std = min(spread, largest)
    latest = float(values[-1])
    return LatestVerdict(
        timestamp=from_epoch_ms(int(series.timestamps_ms[-1])),
        value=latest,
        window_mean=mean,
        window_std_dev=std,
        is_anomaly=bool(std > 0 and abs(latest - mean) > sigma * std),
        method_is_anomaly=bool(output.is_anomaly[-1]),
    )
