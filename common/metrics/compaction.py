"""Compaction and retention of readings: the beat task `neonomaly.compact` runs `maintain`.

A metric's readings newer than READING_RAW_WINDOW_HOURS stay raw (chain nodes, as the seed
has them); older ones move into ReadingChunks (common.metrics.chunks), a few bytes a
reading instead of a node each. The window is long because the raw chain is where late
readings are cheapest to splice in and where detection rebuilds read from: a day or two
covers an agent that was offline, and a scan's history. The newest reading always stays
raw, so that LATEST_READING has a node to point at.

Readings older than READING_RETENTION_DAYS (0: keep everything) are deleted, chunks and raw
readings alike; anomalies stay, with their value, expected value and time.

Both go metric by metric, each statement bounded (MAX_MOVED readings, MAX_CHUNKS chunks),
so other writers get the store between statements: nobody's appends wait behind a fleet's
compaction.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from common.epoch import now_ms
from common.graph.params import MIN_MS
from common.ids import reading_id
from common.metrics.chunks import CHUNK_READINGS, decode_ids
from common.metrics.models import ChunkSummary, CompactionTarget, ReadingSeries, concat, take
from common.metrics.repository import ReadingRepository, chunk_params
from common.settings import Settings

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
METRICS_PER_PAGE = 200
MAX_MOVED = 10_000  # raw readings compacted (or deleted) by one statement
MAX_CHUNKS = 100  # chunks deleted by one statement


@dataclass
class MaintenanceReport:
    metrics: int = 0
    compacted: int = 0  # readings moved into chunks
    chunks_written: int = 0
    deleted_readings: int = 0  # raw readings past retention
    deleted_chunks: int = 0
    trimmed_chunks: int = 0  # chunks that lost their readings past retention
    skipped: int = 0  # metrics that changed while compacted: left for the next run
    seconds: float = 0.0


def maintain(
    readings: ReadingRepository, settings: Settings, now: int | None = None
) -> MaintenanceReport:
    """One run over every metric: compact what left the raw window, delete what is past
    retention."""
    began = time.monotonic()
    at = now_ms() if now is None else now
    boundary = at - settings.reading_raw_window_hours * HOUR_MS
    cutoff = None
    if settings.reading_retention_days:
        cutoff = at - settings.reading_retention_days * DAY_MS
    report = MaintenanceReport()
    after = ""
    while True:
        page = readings.compaction_targets(after, METRICS_PER_PAGE)
        if not page:
            break
        for target in page:
            report.metrics += 1
            compact_metric(readings, target, boundary, report)
            if cutoff is not None:
                apply_retention(readings, target.id, cutoff, report)
        after = page[-1].id
    report.seconds = time.monotonic() - began
    log.info(
        "compaction: %d metrics, %d readings compacted into %d chunks, %d readings and %d "
        "chunks past retention deleted, %d trimmed, %d metrics changed meanwhile (%.1f s)",
        report.metrics,
        report.compacted,
        report.chunks_written,
        report.deleted_readings,
        report.deleted_chunks,
        report.trimmed_chunks,
        report.skipped,
        report.seconds,
    )
    return report


def compact_metric(
    readings: ReadingRepository,
    target: CompactionTarget,
    boundary_ms: int,
    report: MaintenanceReport,
) -> None:
    """Move a metric's raw readings older than `boundary_ms` (never its newest) into its
    chunks, MAX_MOVED at a time: the newest chunk is filled up to CHUNK_READINGS, then new
    ones follow."""
    through = target.through
    while target.latest_ms is not None:
        upto = min(boundary_ms, target.latest_ms)
        if through is not None and upto <= through:
            return
        raw = readings.read_window(target.id, through, upto, limit=MAX_MOVED + 1)
        if len(raw) == 0:
            return
        new_through = upto
        if len(raw) > MAX_MOVED:
            # Up to the first reading left raw; all readings at one time move together.
            new_through = int(raw.timestamps_ms[MAX_MOVED])
            if new_through == int(raw.timestamps_ms[0]):
                new_through += 1
                raw = readings.read_window(target.id, through, new_through)
            raw = take(raw, raw.timestamps_ms < new_through)
        last = readings.last_chunk(target.id)
        if last.through != through:
            report.skipped += 1
            return
        tail = last.chunks[0] if last.chunks and last.chunks[0].readings < CHUNK_READINGS else None
        merged = joined(readings, target.id, tail, raw)
        if merged is None:
            report.skipped += 1
            return
        written = chunk_params(merged[0], tail, CHUNK_READINGS, ids_derived=merged[1])
        done = readings.replace_history(
            target.id,
            through,
            [] if tail is None else [tail],
            [],
            written,
            new_through=new_through,
            moved=len(raw),
        )
        if not done:
            report.skipped += 1
            return
        report.compacted += len(raw)
        report.chunks_written += len(written)
        through = new_through


def joined(
    readings: ReadingRepository, metric_id: str, tail: ChunkSummary | None, raw: ReadingSeries
) -> tuple[ReadingSeries, bool] | None:
    """The tail chunk's readings followed by `raw`, and whether every id is derived.

    When they all are (readings sent without ids, the usual case), the ids are neither
    made from the chunk nor checked again: the joined series carries empty ids, and the
    chunks written keep none. None if the tail chunk changed since it was listed."""
    derived = all(
        rid == reading_id(ms, value)
        for rid, ms, value in zip(
            raw.ids, raw.timestamps_ms.tolist(), raw.values.tolist(), strict=True
        )
    )
    if tail is None:
        return raw, derived
    columns = readings.chunk_columns(metric_id, tail)
    if columns is None:
        return None
    times, values, ids = columns
    if derived and ids is None:
        blank = [""] * (len(times) + len(raw))
        both = ReadingSeries(
            ids=blank,
            timestamps_ms=np.concatenate([times, raw.timestamps_ms]),
            values=np.concatenate([values, raw.values]),
        )
        return both, True
    old = ReadingSeries(ids=decode_ids(ids, times, values), timestamps_ms=times, values=values)
    return concat([old, raw]), False


def apply_retention(
    readings: ReadingRepository, metric_id: str, cutoff_ms: int, report: MaintenanceReport
) -> None:
    """Delete a metric's readings older than `cutoff_ms`: whole chunks, the part of the
    chunk that straddles the cutoff, and raw readings; each statement bounded."""
    while True:
        history = readings.history(metric_id, MIN_MS, cutoff_ms)
        old = [c for c in history.chunks if c.last_ms < cutoff_ms][:MAX_CHUNKS]
        straddling = [c for c in history.chunks if c.last_ms >= cutoff_ms][:1]
        if not old and not straddling:
            break
        written = []
        if straddling and len(old) < MAX_CHUNKS:
            columns = readings.chunk_readings(metric_id, straddling)
            if columns is None:
                report.skipped += 1
                break
            kept = columns[straddling[0].id]
            kept = take(kept, np.asarray(kept.timestamps_ms >= cutoff_ms))
            written = chunk_params(kept, straddling[0])
        else:
            straddling = []
        done = readings.replace_history(
            metric_id, history.through, old + straddling, [c.id for c in old], written
        )
        if not done:
            report.skipped += 1
            break
        report.deleted_chunks += len(old)
        report.trimmed_chunks += len(straddling)
        if len(old) < MAX_CHUNKS:
            break
    while True:
        deleted = readings.delete_raw_before(metric_id, cutoff_ms, MAX_MOVED)
        report.deleted_readings += deleted
        if deleted < MAX_MOVED:
            break
