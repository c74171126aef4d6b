"""Metrics and their readings in the graph. Scoped methods take the caller's `owner_id`:
another user's metric is not found, exactly as if it did not exist. Times are epoch ms."""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from common.edits import NameEdit
from common.epoch import from_epoch_ms, now_ms, optional_moment
from common.errors import (
    ConflictError,
    DependencyUnavailableError,
    LimitExceededError,
    NotFoundError,
)
from common.graph.deletes import delete_metric_children
from common.graph.executors import (
    GRAPH,
    CypherExecutor,
    Row,
    UniqueConstraintError,
    write_naming,
)
from common.graph.params import (
    MAX_MS,
    MIN_MS,
    NO_LIMIT,
    READ_BATCH,
    KeysetPage,
    PageKey,
    keyset_page,
    new_node,
    time_range,
)
from common.ids import new_id
from common.methods import MetricDetection
from common.metrics import chunks as codec
from common.metrics import queries as q
from common.metrics.models import (
    EMPTY_SERIES,
    BucketSeries,
    Chain,
    ChainLink,
    ChunkSummary,
    CompactionTarget,
    CreatedMetrics,
    DueMetric,
    FoundMetric,
    History,
    Metric,
    MetricRef,
    NamedMetric,
    NewReading,
    Reading,
    ReadingSeries,
    ScanMark,
    ScanRead,
    ServiceKey,
    WantedMetric,
    concat,
    rebuild_waiting_since,
    take,
)
from common.metrics.placement import (
    PROBE_WINDOWS_MS,
    Gap,
    Key,
    Run,
    in_chain_order,
    merged,
    reading_key,
    runs,
    split_late,
)


def _labels(row: Row) -> dict[str, str]:
    return dict(zip(row["label_names"] or [], row["label_values"] or [], strict=True))


def label_columns(labels: Mapping[str, str]) -> dict[str, list[str] | None]:
    """Labels as the graph keeps them: names sorted, values beside; none: unset."""
    names = sorted(labels)
    return {
        "label_names": names or None,
        "label_values": [labels[name] for name in names] or None,
    }


def _latest_key(row: Row) -> tuple[int, str] | None:
    if row["latest_id"] is None:
        return None
    return int(row["latest_timestamp"]), row["latest_id"]


def _detection(row: Row) -> MetricDetection:
    """A metric's own detection settings, kept as one JSON string (none: the defaults)."""
    return MetricDetection.model_validate_json(row.get("detection") or "{}")


def _metric(row: Row) -> Metric:
    latest = None
    if row["latest_id"] is not None:
        latest = Reading(
            id=row["latest_id"],
            timestamp=from_epoch_ms(row["latest_timestamp"]),
            value=row["latest_value"],
        )
    return Metric(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        service_id=row["service_id"],
        labels=_labels(row),
        created_at=from_epoch_ms(row["created_at"]),
        latest_reading=latest,
        last_judged_at=optional_moment(row["judged_at"]),
        judged_through=optional_moment(row["judged_through"]),
        scan_lag_seconds=_scan_lag_seconds(row),
        scan_waiting_since=optional_moment(_rebuild_waiting_since(row)),
        scan_note=row["scan_note"],
        detection=_detection(row),
    )


def _rebuild_waiting_since(row: Row) -> int | None:
    marked, judged_at = row.get("rebuild_waiting_since"), row["judged_at"]
    return rebuild_waiting_since(
        None if marked is None else int(marked), None if judged_at is None else int(judged_at)
    )


def _scan_lag_seconds(row: Row) -> float | None:
    """The lag at the last scan; while the metric's state rebuild waits for a later sweep,
    the time since its wait began, growing until it is judged."""
    waiting = _rebuild_waiting_since(row)
    if waiting is not None:
        return max(0, now_ms() - waiting) / 1000
    lag_ms = row["scan_lag_ms"]
    return None if lag_ms is None else int(lag_ms) / 1000


def metric_limit_message(max_metrics: int, owned: int) -> str:
    return (
        f"the metric limit is reached: you have {owned} metrics and MAX_METRICS_PER_OWNER is "
        f"{max_metrics}; delete metrics you no longer need, or have the operator raise it"
    )


def _metric_ref(row: Row) -> MetricRef:
    return MetricRef(
        id=row["id"],
        name=row["name"],
        service_id=row["service_id"],
        owner_id=row["owner_id"],
        latest_ms=row["latest_timestamp"],
    )


def _columns(row: Row) -> ReadingSeries:
    return ReadingSeries(
        ids=row["ids"],
        timestamps_ms=np.array(row["timestamps"], dtype=np.int64),
        values=np.array(row["vals"], dtype=np.float64),
    )


def _sorted(series: ReadingSeries) -> ReadingSeries:
    """The readings in (timestamp, id) order, whatever order the engine collected them in
    (the queries sort, but neither engine promises that collect() keeps it per group)."""
    steps = np.diff(series.timestamps_ms)
    if bool((steps > 0).all()):
        return series
    if bool((steps < 0).all()):
        order: list[int] = list(range(len(series) - 1, -1, -1))
    else:
        order = _time_then_id_order(series.timestamps_ms, series.ids)
    return ReadingSeries(
        ids=[series.ids[i] for i in order],
        timestamps_ms=series.timestamps_ms[order],
        values=series.values[order],
    )


def _time_then_id_order(times: np.ndarray, ids: list[str]) -> list[int]:
    """The positions in (timestamp, id) order: numpy sorts the times, and only runs of
    equal times are sorted by id in Python (a key per reading cost 15 ms for 10,000)."""
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    positions: list[int] = order.tolist()
    firsts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    lasts = np.r_[firsts[1:], len(ordered)]
    tied = lasts - firsts > 1
    for first, last in zip(firsts[tied].tolist(), lasts[tied].tolist(), strict=True):
        positions[first:last] = sorted(positions[first:last], key=ids.__getitem__)
    return positions


def _windows(windows: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"id": metric_id, "start": start_ms} for metric_id, start_ms in windows]


def _history(row: Row | None) -> History:
    if row is None:
        return History(through=None, chunks=[])
    return History(
        through=row["through"],
        chunks=[
            ChunkSummary(*fields)
            for fields in zip(
                row["ids"],
                row["versions"],
                row["firsts"],
                row["lasts"],
                row["counts"],
                row["lows"],
                row["highs"],
                strict=True,
            )
        ],
    )


class HistoryBusyError(DependencyUnavailableError):
    """A metric's compacted history kept changing under a read or a merge (compaction,
    late readings): retried a few times, then a 503 that asks the client to retry."""

    def __init__(self, metric_id: str):
        super().__init__(
            GRAPH, f"metric {metric_id}'s history changed during {_ATTEMPTS} attempts: retry"
        )


# A read that finds the compacted boundary (or a chunk) changed while it read starts
# again: compaction moves each metric's boundary once per run, so a second try succeeds.
_ATTEMPTS = 5
# Metrics marked waiting for a rebuild, or looked up as left behind, per statement: a sweep
# that leaves a whole fleet's rebuilds for later holds the store this long at most a time.
WAITING_CHUNK = 5000


class MetricRepository:
    def __init__(self, executor: CypherExecutor):
        self.executor = executor

    def create(
        self,
        owner_id: str,
        service_id: str,
        name: str,
        description: str | None,
        labels: Mapping[str, str] | None = None,
        max_metrics: int | None = None,
    ) -> Metric:
        """A new metric in one of the owner's services; with `max_metrics`, only while the
        owner has fewer metrics than that (LimitExceededError otherwise)."""
        params = new_node(
            owner_id,
            service_id=service_id,
            name=name,
            description=description,
            max_metrics=NO_LIMIT if max_metrics is None else max_metrics,
            **label_columns(labels or {}),
        )
        rows = write_naming(
            self.executor,
            q.CREATE_METRIC if max_metrics is None else q.CREATE_METRIC_WITHIN_LIMIT,
            params,
            ConflictError(f"service {service_id} already has a metric named {name!r}"),
        )
        if not rows:
            raise NotFoundError(f"service {service_id} not found")
        if max_metrics is not None and rows[0]["owned"] >= max_metrics:
            raise LimitExceededError(metric_limit_message(max_metrics, rows[0]["owned"]))
        metric = self.get(owner_id, params["id"])
        if metric is None:  # the service was deleted just after the metric was created
            raise NotFoundError(f"service {service_id} not found")
        return metric

    def find_by_ids(self, owner_id: str, metric_ids: Sequence[str]) -> dict[str, FoundMetric]:
        """Those of the metrics that are the owner's, by id."""
        rows = self.executor.read(
            q.METRICS_BY_ID, {"owner_id": owner_id, "metric_ids": list(metric_ids)}
        )
        return {row["id"]: FoundMetric(row["id"], _latest_key(row)) for row in rows}

    def find_by_names(
        self, owner_id: str, services: Sequence[ServiceKey], names: Sequence[Sequence[str]]
    ) -> list[NamedMetric]:
        """The owner's metrics named `names[k]` in the service `services[k]` (by id, or by
        name when the id is None): a NamedMetric per service found and name."""
        rows = self.executor.read(
            q.METRICS_BY_NAME,
            {
                "owner_id": owner_id,
                "service_ids": [service_id for service_id, _ in services],
                "service_names": [service_name for _, service_name in services],
                "metric_names": [list(n) for n in names],
            },
        )
        return [
            NamedMetric(
                service=int(row["service"]),
                service_id=row["service_id"],
                name=row["name"],
                metric=None if row["id"] is None else FoundMetric(row["id"], _latest_key(row)),
            )
            for row in rows
        ]

    def create_missing(
        self, owner_id: str, wanted: Sequence[WantedMetric], max_metrics: int
    ) -> CreatedMetrics:
        """Create the wanted metrics (and services named but missing), in order, while the
        owner has fewer than `max_metrics`; for each, the metric (created, or made by another
        request meanwhile), or None if refused: over the limit, or its service is missing
        (by id) or ambiguous (two of the owner's services have that name). One statement."""
        new_services: dict[str, str] = {}
        rows = self.executor.write(
            q.CREATE_MISSING_METRICS,
            {
                "owner_id": owner_id,
                "now": now_ms(),
                "max_metrics": max_metrics,
                "wanted": [
                    {
                        "index": index,
                        "service_id": w.service_id,
                        "service_name": w.service_name,
                        "new_service_id": None
                        if w.service_name is None
                        else new_services.setdefault(w.service_name, new_id()),
                        "id": new_id(),
                        "name": w.name,
                        **label_columns(w.labels),
                    }
                    for index, w in enumerate(wanted)
                ],
            },
        )
        created = CreatedMetrics([None] * len(wanted), [0] * len(wanted), 0)
        for row in rows:
            index = int(row["wanted"])
            created.services[index] = int(row["services"])
            created.owned = int(row["owned"])
            if row["id"] is not None:
                created.metrics[index] = FoundMetric(row["id"], None, bool(row["created"]))
        return created

    def get(self, owner_id: str, metric_id: str) -> Metric | None:
        rows = self.executor.read(q.GET_METRIC, {"owner_id": owner_id, "metric_id": metric_id})
        return _metric(rows[0]) if rows else None

    def find_by_name(self, owner_id: str, service_id: str, name: str) -> Metric | None:
        rows = self.executor.read(
            q.FIND_METRIC_BY_NAME, {"owner_id": owner_id, "service_id": service_id, "name": name}
        )
        return _metric(rows[0]) if rows else None

    def list_in_service(self, owner_id: str, service_id: str) -> list[Metric]:
        rows = self.executor.read(q.LIST_METRICS, {"owner_id": owner_id, "service_id": service_id})
        return [_metric(row) for row in rows]

    def update(self, owner_id: str, metric_id: str, edit: NameEdit) -> Metric | None:
        rows = write_naming(
            self.executor,
            q.UPDATE_METRIC,
            {"owner_id": owner_id, "metric_id": metric_id, **edit.params()},
            ConflictError(f"the service already has a metric named {edit.name!r}"),
        )
        if not rows:
            return None
        return self.get(owner_id, metric_id)

    def set_detection(
        self, owner_id: str, metric_id: str, detection: MetricDetection
    ) -> Metric | None:
        """Replace the metric's own detection settings; None: not the owner's metric."""
        rows = self.executor.write(
            q.SET_METRIC_DETECTION,
            {
                "owner_id": owner_id,
                "metric_id": metric_id,
                "detection": detection.model_dump_json(exclude_none=True),
            },
        )
        return _metric(rows[0]) if rows else None

    def delete(self, owner_id: str, metric_id: str) -> bool:
        """Delete a metric with its readings and anomalies; False if it is not the owner's.

        In bounded steps (see BEGIN_DELETE_METRIC): the metric is gone for every reader from
        the first one, and its data is deleted a batch at a time, so other tenants' writes
        get in between. A metric whose delete was cut short is still found here, and its
        delete carried on.
        """
        rows = self.executor.write(
            q.BEGIN_DELETE_METRIC, {"owner_id": owner_id, "metric_id": metric_id, "now": now_ms()}
        )
        if not rows:
            return False
        self.finish_delete(metric_id)
        return True

    def finish_delete(self, metric_id: str) -> None:
        """Delete a metric already marked `deleting`: what it owns in batches, then itself."""
        delete_metric_children(self.executor, metric_id)
        self.executor.write(q.FINISH_DELETE_METRIC, {"metric_id": metric_id})

    def interrupted_deletes(self, marked_before_ms: int, limit: int) -> list[str]:
        """Metrics marked `deleting` before `marked_before_ms` and not gone: deletes that
        were cut short, for the worker to finish."""
        rows = self.executor.read(
            q.METRICS_BEING_DELETED, {"before": marked_before_ms, "limit": limit}
        )
        return [row["id"] for row in rows]

    def get_ref(self, metric_id: str) -> MetricRef | None:
        """A metric with its owner, unscoped: for workers acting on a job's metric id."""
        rows = self.executor.read(q.GET_METRIC_REF, {"metric_id": metric_id})
        return _metric_ref(rows[0]) if rows else None

    def due_for_scan(self, since_ms: int | None, also: Sequence[str] = ()) -> list[DueMetric]:
        """Metrics of every owner that received readings at or after `since_ms` (server
        time), or whose id is in `also`, with how far scans have judged them; by id."""
        rows = self.executor.read(
            q.METRICS_DUE, {"since": MIN_MS if since_ms is None else since_ms}
        )
        ids = sorted(set(also))
        for first in range(0, len(ids), WAITING_CHUNK):
            rows += self.executor.read(
                q.METRICS_BEHIND, {"ids": ids[first : first + WAITING_CHUNK]}
            )
        due = {
            row["id"]: DueMetric(
                id=row["id"],
                owner_id=row["owner_id"],
                latest_ms=row["latest_timestamp"],
                judged_through_ms=row["judged_through"],
                late_from_ms=row["late_from"],
                compacted_through_ms=row["compacted_through"],
                appended_at_ms=row["appended_at"],
                judged_at_ms=row["judged_at"],
                rebuild_waiting_since_ms=row["rebuild_waiting_since"],
                detection=_detection(row),
            )
            for row in rows
        }
        return [due[metric_id] for metric_id in sorted(due)]

    def mark_rebuilds_waiting(self, waiting: Sequence[tuple[str, int]]) -> None:
        """Per (metric id, since): the metric's state rebuild waits for a later sweep, since
        `since` unless it was already waiting (see MARK_REBUILDS_WAITING)."""
        for first in range(0, len(waiting), WAITING_CHUNK):
            chunk = sorted(waiting[first : first + WAITING_CHUNK])
            self.executor.write(
                q.MARK_REBUILDS_WAITING,
                {"min": MIN_MS, "waiting": [{"id": i, "since": since} for i, since in chunk]},
            )

    def save_scan_marks(self, marks: Sequence[ScanMark]) -> None:
        """Write on each metric how far a scan judged it (see SAVE_SCAN_MARKS), in one
        statement."""
        if not marks:
            return
        self.executor.write(
            q.SAVE_SCAN_MARKS,
            {
                "now": now_ms(),
                "min": MIN_MS,
                "lock": self.executor.engine == "neo4j",
                # Sorted: on Neo4j, writers that lock several metrics lock them in one order.
                "marks": [
                    {
                        "id": mark.metric_id,
                        "after": mark.after_ms,
                        "through": mark.through_ms,
                        "judged": mark.judged,
                        "raw": mark.raw,
                        "compacted_through": mark.compacted_through_ms,
                        "late_seq": mark.late_seq,
                        "appended_at": mark.appended_at_ms,
                        "lag_ms": mark.lag_ms,
                        "note": mark.note,
                    }
                    for mark in sorted(marks, key=lambda mark: mark.metric_id)
                ],
            },
        )

    def ids_in_services(self, service_ids: Sequence[str]) -> list[str]:
        rows = self.executor.read(q.METRIC_IDS_OF_SERVICES, {"service_ids": list(service_ids)})
        return [row["id"] for row in rows]


# Placing a batch again after a concurrent append moved its neighbours: rare (two clients
# appending to one metric at once), and each attempt places what the last one could not.
APPEND_ATTEMPTS = 8

Latest = Mapping[str, Key | None]  # metric id -> its newest reading's key (None: no readings)


class ReadingRepository:
    """A metric's readings, wherever they are: the raw window (MetricReading nodes in the
    chain) or compacted history (ReadingChunk nodes, common.metrics.chunks). Every read here
    sees both, in (timestamp, id) order, and callers never need to know which is which.

    The raw window holds every reading at or after the metric's boundary (`through`);
    chunks hold those before it. A read takes the raw part and the boundary in one
    statement, then the chunks; if the boundary moved in between (compaction ran), or a
    chunk read is not the version its summary named, it reads again.
    """

    def __init__(self, executor: CypherExecutor):
        self.executor = executor

    # --- writes --------------------------------------------------------------------------
    def append(
        self, metric_id: str, readings: Sequence[NewReading], latest: Latest | None = None
    ) -> int:
        """Store readings in the metric's chain; returns how many were new (see append_many).
        NotFoundError if the metric is gone or being deleted (then nothing is stored)."""
        stored = self.append_many({metric_id: readings}, latest).get(metric_id, 0)
        # Nothing stored: every reading a duplicate, or no metric to store them in.
        if (
            not stored
            and readings
            and not self.executor.read(q.GET_METRIC_REF, {"metric_id": metric_id})
        ):
            raise NotFoundError(f"metric {metric_id} not found")
        return stored

    def append_many(
        self,
        batches: Mapping[str, Sequence[NewReading]],
        latest: Latest | None = None,
        owner_id: str | None = None,
    ) -> dict[str, int]:
        """Store readings in the chains of several metrics; how many were new, per metric.

        A reading whose id is already stored for its metric is skipped (and so is a repeat
        within a batch: the first one wins). Readings older than a metric's newest are
        spliced in at their place, in time proportional to what is spliced. One statement
        for the whole batch: no chain is ever seen half-linked; the caller bounds the batch
        (the API: MAX_BATCH_READINGS). `latest`, when the caller has just read it, saves a
        read; a stale one only costs a second attempt. A metric that does not exist (or is
        deleted meanwhile) stores nothing.

        With `owner_id`, only that owner's metrics get readings, the answer holds only the
        metrics found (the owner's, not being deleted), and a metric missing from `latest`
        is not read first: its readings are sent as its tail, behind its newest reading
        whatever that is, which the statement checks under the lock. So a batch of readings
        newer than their metrics' (the fleet's minute) costs one statement and no read; a
        guess that was wrong (a late or re-sent reading, one older than the compacted
        boundary, a metric that is not the owner's) stores nothing and is read and placed
        on the next attempt.

        Readings older than a metric's compacted boundary are merged into its chunks
        (`merge_into_history`), where a duplicate id is refused the same way; the chain
        statement refuses a gap older than the boundary, so a boundary that compaction
        moved meanwhile sends those readings there on the next attempt.
        """
        pending = {m: in_chain_order(rs) for m, rs in batches.items() if rs}
        known = dict(latest or {})
        stored = dict.fromkeys(batches if owner_id is None else known, 0)
        guess = owner_id is not None and any(m not in known for m in pending)
        for attempt in range(APPEND_ATTEMPTS + guess):
            if not pending:
                return stored
            guessing = guess and not attempt
            if not guessing and (attempt or any(m not in known for m in pending)):
                known = self._latest(list(pending), owner_id)
                pending = {m: rs for m, rs in pending.items() if m in known}
                for metric_id in known:
                    stored.setdefault(metric_id, 0)
            if attempt:  # a gap left out by the last attempt may be readings stored since
                pending = self._unstored(pending)
            sure = {m: rs for m, rs in pending.items() if m in known}
            for metric_id, old in self._older_than_boundary(sure, known).items():
                stored[metric_id] += self.merge_into_history(metric_id, old)
                pending[metric_id] = pending[metric_id][len(old) :]
            # A guess: no newest reading known, so every reading is a tail.
            gaps = self._place(pending, {m: known.get(m) for m in pending})
            placed = self._write(gaps, owner_id)
            retry: dict[str, list[NewReading]] = {}
            for index, gap in enumerate(gaps):
                if index in placed:
                    stored[gap.metric_id] = stored.get(gap.metric_id, 0) + placed[index]
                else:
                    retry.setdefault(gap.metric_id, []).extend(gap.readings)
            pending = {m: in_chain_order(rs) for m, rs in retry.items()}
        if not pending:
            return stored
        raise DependencyUnavailableError(
            GRAPH, f"readings of metric {next(iter(pending))} kept racing other appends; retry"
        )

    def _latest(self, metric_ids: list[str], owner_id: str | None = None) -> dict[str, Key | None]:
        """Each existing metric's newest reading's key (None: no readings); with
        `owner_id`, only that owner's metrics."""
        if owner_id is None:
            rows = self.executor.read(q.LATEST_READINGS, {"metric_ids": metric_ids})
        else:
            rows = self.executor.read(
                q.METRICS_BY_ID, {"owner_id": owner_id, "metric_ids": metric_ids}
            )
        return {
            row["id"]: None
            if row["latest_id"] is None
            else (int(row["latest_timestamp"]), row["latest_id"])
            for row in rows
        }

    def _older_than_boundary(
        self, pending: dict[str, list[NewReading]], known: Latest
    ) -> dict[str, list[NewReading]]:
        """Per metric, its pending readings (in chain order) older than its compacted
        boundary: a prefix. Only metrics with late readings or an empty chain can have any
        (the newest reading is never compacted), so in-order appends read nothing here."""
        maybe = []
        for metric_id, readings in pending.items():
            newest = known[metric_id]
            if readings and (newest is None or reading_key(readings[0]) < newest):
                maybe.append(metric_id)
        if not maybe:
            return {}
        rows = self.executor.read(q.METRIC_BOUNDARIES, {"metric_ids": maybe})
        old: dict[str, list[NewReading]] = {}
        for row in rows:
            through = row["through"]
            if through is None:
                continue
            readings = pending[row["id"]]
            before = bisect.bisect_left([r.timestamp_ms for r in readings], through)
            if before:
                old[row["id"]] = readings[:before]
        return old

    def _unstored(self, pending: dict[str, list[NewReading]]) -> dict[str, list[NewReading]]:
        flat = [(m, r) for m, rs in pending.items() for r in rs]
        rows = self.executor.read(
            q.STORED_READINGS,
            {"metric_ids": [m for m, _ in flat], "ids": [r.id for _, r in flat]},
        )
        stored = {row["reading"] for row in rows}
        left: dict[str, list[NewReading]] = {}
        for index, (metric_id, reading) in enumerate(flat):
            if index not in stored:
                left.setdefault(metric_id, []).append(reading)
        return left

    def _place(self, pending: dict[str, list[NewReading]], known: Latest) -> list[Gap]:
        """The gaps the readings go into: each metric's tail behind its newest reading, its
        late readings placed run by run among the stored ones (none older than the
        compacted boundary: append_many has merged those into chunks).
        """
        gaps: list[Gap] = []
        late_runs: list[Run] = []
        for metric_id, readings in pending.items():
            late, tail = split_late(readings, known[metric_id])
            if tail:
                gaps.append(Gap(metric_id, tail, tail=True))
            late_runs += [Run.of(metric_id, run) for run in runs(late)]
        if late_runs:
            gaps += self._place_runs(late_runs)
        return merged(gaps)

    def _place_runs(self, late_runs: list[Run]) -> list[Gap]:
        rows = self.executor.read(
            q.READINGS_IN_RANGES,
            {
                "range_metric": [run.metric_id for run in late_runs],
                "range_start": [run.start_ms for run in late_runs],
                "range_end": [run.end_ms for run in late_runs],
            },
        )
        stored_keys: dict[int, list[Key]] = {
            row["range"]: list(zip(map(int, row["timestamps"]), row["ids"], strict=True))
            for row in rows
        }
        gaps: list[Gap] = []
        below: list[Run] = []
        for index, run in enumerate(late_runs):
            run.place(stored_keys.get(index, []))
            gaps += run.gaps
            if run.below:
                below.append(run)
        before = self._probe(q.READING_BEFORE, [(r.metric_id, (r.start_ms, "")) for r in below])
        headless: list[Run] = []
        for run, neighbour in zip(below, before, strict=True):
            if neighbour is not None:
                gaps.append(Gap(run.metric_id, run.below, after_id=neighbour[1]))
            elif run.first_stored is not None:
                gaps.append(Gap(run.metric_id, run.below, before_id=run.first_stored[1]))
            else:
                headless.append(run)
        after = self._probe(
            q.READING_AFTER, [(r.metric_id, reading_key(r.below[-1])) for r in headless]
        )
        for run, neighbour in zip(headless, after, strict=True):
            # None: no reading at all any more (deleted meanwhile); the write leaves it out.
            before_id = None if neighbour is None else neighbour[1]
            gaps.append(Gap(run.metric_id, run.below, before_id=before_id))
        return gaps

    def _probe(self, query: str, probes: list[tuple[str, Key]]) -> list[Key | None]:
        """The stored key just before (READING_BEFORE) or after (READING_AFTER) each probe's
        key, looked for in windows that widen until found: a short read when it is near."""
        found: list[Key | None] = [None] * len(probes)
        todo = list(range(len(probes)))
        for window in PROBE_WINDOWS_MS:
            if not todo:
                break
            span = MAX_MS if window is None else window
            stamps = [probes[i][1][0] for i in todo]
            rows = self.executor.read(
                query,
                {
                    "probe_metric": [probes[i][0] for i in todo],
                    "probe_timestamp": stamps,
                    "probe_id": [probes[i][1][1] for i in todo],
                    "probe_from": [max(MIN_MS, t - span) for t in stamps],
                    "probe_until": [min(MAX_MS, t + span) for t in stamps],
                },
            )
            for row in rows:
                if row["id"] is not None:
                    found[todo[row["probe"]]] = (int(row["timestamp"]), row["id"])
            todo = [i for i in todo if found[i] is None]
        return found

    def _write(self, gaps: list[Gap], owner_id: str | None = None) -> dict[int, int]:
        """Run APPEND_READINGS for the gaps: readings stored, per gap it placed.

        Every reading's id is looked up for a stored duplicate, but on Neo4j those of tail
        gaps are not at first: its uniqueness constraint on (metric_id, id) refuses a stored
        id there, and then the whole statement, which wrote nothing, runs again with every
        id looked up. A tail reading is newer than the newest stored one, so it is stored
        already only if its id was reused for another time (a sender's own ids can be), or
        if another append stored it meanwhile (then its gap finds its neighbours moved and
        is placed again). The lookup (a locking index seek per reading) was a tenth to a
        half of the statement's time on Neo4j, most for one metric's 5,000 readings
        (BENCHMARKS.md, Ingest). FalkorDB has no such constraint: it looks every id up.
        """
        if not gaps:
            return {}
        if self.executor.engine == "neo4j":
            try:
                return self._append(gaps, owner_id, tails_checked=False)
            except UniqueConstraintError:
                pass  # a reused id in a tail: nothing was written; again, every id looked up
        return self._append(gaps, owner_id, tails_checked=True)

    def _append(self, gaps: list[Gap], owner_id: str | None, tails_checked: bool) -> dict[int, int]:
        # A metric's gaps side by side, metrics in id order (the order the locks are taken).
        order = sorted(range(len(gaps)), key=lambda index: gaps[index].metric_id)
        gaps = [gaps[index] for index in order]
        metric_ids: list[str] = []
        metric_first: list[int] = []
        ids: list[str] = []
        timestamps: list[int] = []
        values: list[float] = []
        first: list[int] = []
        for index, gap in enumerate(gaps):
            if not metric_ids or metric_ids[-1] != gap.metric_id:
                metric_ids.append(gap.metric_id)
                metric_first.append(index)
            first.append(len(ids))
            for reading in gap.readings:
                ids.append(reading.id)
                timestamps.append(reading.timestamp_ms)
                values.append(reading.value)
        rows = self.executor.write(
            q.APPEND_READINGS,
            {
                # Only Neo4j runs two writes at once: FalkorDB, one write at a time per graph,
                # needs no lock node (making and stamping it: ~5% of a 1,000-metric append).
                "lock": self.executor.engine == "neo4j",
                "owner_id": owner_id,
                "now": now_ms(),
                "min": MIN_MS,
                "metric_ids": metric_ids,
                "metric_gap_first": metric_first,
                "metric_gap_last": [*metric_first[1:], len(gaps)],
                "gap_tail": [gap.tail for gap in gaps],
                "gap_checked": [tails_checked or not gap.tail for gap in gaps],
                "gap_after": [gap.after_id for gap in gaps],
                "gap_before": [gap.before_id for gap in gaps],
                "gap_first": first,
                "gap_last": [*first[1:], len(ids)],
                "ids": ids,
                "timestamps": timestamps,
                "values": values,
            },
        )
        return {order[int(row["gap"])]: int(row["stored"]) for row in rows}

    def merge_into_history(self, metric_id: str, readings: Sequence[NewReading]) -> int:
        """Merge readings older than the boundary into the chunks their times fall in
        (the newest chunk starting at or before each; the oldest chunk for a reading before
        them all); returns how many were new. An id stored in that chunk, or in the raw
        window, is a duplicate. A chunk grown past CHUNK_READINGS_MAX is cut in pieces."""
        for _ in range(_ATTEMPTS):
            history = self.history(metric_id, None, None)
            if history.through is None:
                return 0  # the metric is gone (a boundary is never taken back)
            late = [r for r in readings if r.timestamp_ms < history.through]
            raw_ids = self._raw_ids_stored(metric_id, [r.id for r in late])
            late = [self._as_stored(r) for r in late if r.id not in raw_ids]
            firsts = [chunk.first_ms for chunk in history.chunks]
            by_chunk: dict[int, list[NewReading]] = {}
            for reading in late:
                at = max(0, bisect.bisect_right(firsts, reading.timestamp_ms) - 1)
                by_chunk.setdefault(at, []).append(reading)
            held = [history.chunks[at] for at in by_chunk if history.chunks]
            columns = self._chunk_columns(metric_id, held, with_ids=True)
            if columns is None:
                continue
            stored = 0
            written: list[dict[str, Any]] = []
            for at, arrivals in by_chunk.items():
                chunk = history.chunks[at] if history.chunks else None
                existing = EMPTY_SERIES if chunk is None else columns[chunk.id]
                merged, added = merge_readings(existing, arrivals)
                stored += added
                if added:
                    written += chunk_params(merged, chunk)
            if not written:
                return 0
            expected = [c for c in held if any(w["id"] == c.id for w in written)]
            earliest = min(reading.timestamp_ms for reading in late)
            if self.replace_history(
                metric_id, history.through, expected, [], written, late_from_ms=earliest
            ):
                return stored
        raise HistoryBusyError(metric_id)

    def _as_stored(self, reading: NewReading) -> NewReading:
        """A reading as the engine would read it back from a node: FalkorDB answers values
        with 15 significant digits, so a chunk keeps what a raw reading would have said."""
        if self.executor.engine != "falkordb":
            return reading
        return NewReading(reading.id, reading.timestamp_ms, float(f"{reading.value:.15g}"))

    def replace_history(
        self,
        metric_id: str,
        through: int | None,
        expected: Sequence[ChunkSummary],
        remove: Sequence[str],
        chunks: Sequence[dict[str, Any]],
        new_through: int | None = None,
        moved: int = 0,
        late_from_ms: int | None = None,
    ) -> bool:
        """One REPLACE_CHUNKS: False (nothing written) when the boundary is no longer
        `through`, a chunk in `expected` changed, or `moved` is not the number of raw
        readings before `new_through` (default: the boundary stays). `late_from_ms`: a
        merge of late readings, the earliest of them (the scans judge them: see the query)."""
        boundary = MIN_MS if through is None else through
        rows = self.executor.write(
            q.REPLACE_CHUNKS,
            {
                "metric_id": metric_id,
                "min": MIN_MS,
                "through": boundary,
                "new_through": boundary if new_through is None else new_through,
                "expected_ids": [chunk.id for chunk in expected],
                "expected": [{"id": chunk.id, "version": chunk.version} for chunk in expected],
                "remove": list(remove),
                "chunks": list(chunks),
                "moved": moved,
                "late_from": late_from_ms,
                "now": now_ms(),
            },
        )
        return bool(rows)

    def delete_raw_before(self, metric_id: str, cutoff_ms: int, limit: int) -> int:
        """Delete up to `limit` of the oldest raw readings before `cutoff_ms` (retention)."""
        rows = self.executor.write(
            q.DELETE_RAW_BEFORE, {"metric_id": metric_id, "cutoff": cutoff_ms, "limit": limit}
        )
        return int(rows[0]["deleted"]) if rows else 0

    # --- reads ---------------------------------------------------------------------------
    def read_window(
        self,
        metric_id: str,
        start_ms: int | None,
        end_ms: int | None,
        limit: int | None = None,
        newest: bool = False,
    ) -> ReadingSeries:
        """Readings with start <= timestamp < end in time order, raw and compacted alike.

        With a limit, the oldest `limit` of the window, or the newest with `newest=True`.
        A long window is read in pieces of about READ_BATCH readings: raw ones in spans of
        time (`_read_raw`), chunks a few at a time (`_compacted`).
        """
        window = time_range(start_ms, end_ms)
        for _ in range(_ATTEMPTS):
            read = self._read_raw(metric_id, window, limit, newest)
            if read is None:
                continue
            raw, through = read
            if (
                through is None
                or window["start"] >= through
                or (limit and newest and len(raw) >= limit)
            ):
                return raw
            old = self._compacted(
                metric_id, window["start"], min(window["end"], through), through, limit, newest
            )
            if old is None:
                continue
            both = concat([old, raw])
            if limit and len(both) > limit:
                both = take(both, slice(len(both) - limit, None) if newest else slice(0, limit))
            return both
        raise HistoryBusyError(metric_id)

    def _read_raw(
        self, metric_id: str, window: dict[str, int], limit: int | None, newest: bool
    ) -> tuple[ReadingSeries, int | None] | None:
        """The raw readings of a window in time order (the oldest or newest `limit`) and
        the compacted boundary read with them; None if the boundary moved between spans.

        A window of more than READ_BATCH raw readings is read as equal spans of time,
        about READ_BATCH readings each where they are evenly spread, from the end the
        limit keeps, until the limit is reached: one reply of 100,000 readings held the
        embedded server's threads for seconds under load, and other tenants' requests with
        them. The spans cover the whole window, so a reading stored meanwhile is not missed.
        """
        [extent] = self.executor.read(q.WINDOW_EXTENT, {"metric_id": metric_id, **window})
        if extent["readings"] <= READ_BATCH:
            if not limit:  # every reading
                [row] = self.executor.read(
                    q.READ_WINDOW_UNORDERED, {"metric_id": metric_id, **window}
                )
                return _sorted(_columns(row)), row["through"]
            params = {"metric_id": metric_id, **window, "limit": limit}
            [row] = self.executor.read(q.READ_WINDOW_NEWEST if newest else q.READ_WINDOW, params)
            raw = _columns(row)
            return (take(raw, slice(None, None, -1)) if newest else raw), row["through"]
        spans = -(-int(extent["readings"]) // READ_BATCH)
        width = -(-(int(extent["last"]) - int(extent["first"]) + 1) // spans)
        cuts = [int(extent["first"]) + width * k for k in range(1, spans)]
        bounds = list(zip([window["start"], *cuts], [*cuts, window["end"]], strict=True))
        pages: list[ReadingSeries] = []
        boundaries: set[int | None] = set()
        wanted = NO_LIMIT if limit is None else limit
        for low, high in reversed(bounds) if newest else bounds:
            span = {"metric_id": metric_id, "start": low, "end": high}
            [row] = self.executor.read(q.READ_WINDOW_UNORDERED, span)
            pages.append(_sorted(_columns(row)))
            boundaries.add(row["through"])
            wanted -= len(pages[-1])
            if wanted <= 0:
                break
        if len(boundaries) > 1:
            return None
        raw = concat(pages[::-1] if newest else pages)
        if limit is not None and len(raw) > limit:
            raw = take(raw, slice(-limit, None) if newest else slice(None, limit))
        return raw, boundaries.pop()

    def read_for_scan(
        self, owners: Mapping[str, str], horizon_ms: int, limit: int
    ) -> list[ScanRead]:
        """Each metric's facts and its readings after the newest one judged, up to
        `horizon_ms`, the oldest `limit` of them: one read for a scan batch. `owners`: the
        owner of each metric id. Metrics that no longer exist, or are being deleted, are
        left out."""
        rows = self.executor.read(
            q.SCAN_READ_NEW,
            {"metric_ids": list(owners), "horizon": horizon_ms, "limit": limit},
        )
        return [
            ScanRead(
                metric=MetricRef(
                    id=row["id"],
                    name=row["name"],
                    service_id=row["service_id"],
                    owner_id=owners[row["id"]],
                ),
                latest_ms=row["latest_timestamp"],
                appended_at_ms=row["appended_at"],
                judged_through_ms=row["judged_through"],
                late_from_ms=row["late_from"],
                late_seq=row["late_seq"] or 0,
                compacted_through_ms=row["compacted_through"],
                scan_note=row["scan_note"],
                detection=_detection(row),
                readings=_sorted(_columns(row)),
            )
            for row in rows
        ]

    def count_for_scan(
        self, windows: Sequence[tuple[str, int]], horizon_ms: int, limit: int
    ) -> dict[str, int]:
        """Per (metric id, start) the readings from start up to `horizon_ms`, raw and
        compacted (an estimate: a chunk straddling the start counts whole), at most `limit`."""
        rows = self.executor.read(
            q.SCAN_COUNT_HISTORY,
            {"windows": _windows(windows), "horizon": horizon_ms, "limit": limit},
        )
        return {row["id"]: min(limit, int(row["readings"])) for row in rows}

    def read_history_for_scan(
        self, windows: Sequence[tuple[str, int]], horizon_ms: int, limit: int
    ) -> dict[str, ReadingSeries]:
        """Per (metric id, start) the newest `limit` readings from start up to
        `horizon_ms`, in time order, raw and compacted alike.

        One read for the batch's raw readings; a metric with fewer than `limit` of them and
        chunks after its start is read again through `read_window` (the one read path over
        the raw window and the chunks): only rebuilds of metrics older than the raw window
        cost a read of their own."""
        starts = dict(windows)
        rows = self.executor.read(
            q.SCAN_READ_HISTORY,
            {"windows": _windows(windows), "horizon": horizon_ms, "limit": limit},
        )
        histories = {}
        for row in rows:
            metric_id, through = row["id"], row["through"]
            raw = _sorted(_columns(row))
            start = starts[metric_id]
            if through is not None and start < through and len(raw) < limit:
                raw = self.read_window(metric_id, start, horizon_ms + 1, limit, newest=True)
            histories[metric_id] = raw
        return histories

    def list_page(self, metric_id: str, page: KeysetPage) -> ReadingSeries:
        """A page of readings in time order, as columns: keyset paging on (timestamp, id),
        so a cursor keeps its place whether its reading is raw or compacted meanwhile."""
        if page.after is None:  # the first page is the window's oldest: no cursor to skip
            return self.read_window(metric_id, page.start_ms, page.end_ms, limit=page.size)
        params = keyset_page(metric_id, page)
        for _ in range(_ATTEMPTS):
            [row] = self.executor.read(q.LIST_READINGS_AFTER, params)
            raw = _columns(row)
            through = row["through"]
            if through is None or params["start"] >= through:
                return raw
            end = min(params["end"], through)
            old = self._compacted(
                metric_id, params["start"], end, through, page.size, False, after=page.after
            )
            if old is None:
                continue
            return take(concat([old, raw]), slice(0, page.size))
        raise HistoryBusyError(metric_id)

    def first_timestamp(
        self, metric_id: str, start_ms: int | None, end_ms: int | None
    ) -> int | None:
        """Epoch ms of the oldest reading with start <= timestamp < end; None if none."""
        window = time_range(start_ms, end_ms)
        for _ in range(_ATTEMPTS):
            [row] = self.executor.read(q.WINDOW_FIRST, {"metric_id": metric_id, **window})
            first = None if row["first"] is None else int(row["first"])
            through = row["through"]
            if through is None or window["start"] >= through:
                return first
            history = self.history(metric_id, window["start"], min(window["end"], through))
            if history.through != through:
                continue
            for chunk in history.chunks:
                if chunk.first_ms >= window["start"]:
                    return chunk.first_ms
                columns = self._chunk_times(metric_id, [chunk])
                if columns is None:
                    break
                inside = columns[0][columns[0] >= window["start"]]
                inside = inside[inside < window["end"]]
                if len(inside):
                    return int(inside[0])
            else:
                return first
        raise HistoryBusyError(metric_id)

    def window_buckets(
        self, metric_id: str, start_ms: int, end_ms: int, width_ms: int
    ) -> BucketSeries:
        """Readings start_ms <= timestamp < end_ms as buckets of width_ms (min, max, count);
        empty buckets are left out. Raw readings are aggregated by the engine; a chunk
        lying inside one bucket is answered by its summary, undecoded; only chunks that
        straddle buckets are decoded (their times and values, not their ids)."""
        params = {"metric_id": metric_id, "start": start_ms, "end": end_ms, "width": width_ms}
        for _ in range(_ATTEMPTS):
            [row] = self.executor.read(q.WINDOW_BUCKETS, params)
            parts = [
                (
                    np.array(row["buckets"], dtype=np.int64),
                    np.array(row["lows"], dtype=np.float64),
                    np.array(row["highs"], dtype=np.float64),
                    np.array(row["counts"], dtype=np.int64),
                )
            ]
            through = row["through"]
            if through is not None and start_ms < through:
                old = self._compacted_buckets(
                    metric_id, start_ms, min(end_ms, through), width_ms, through
                )
                if old is None:
                    continue
                parts += old
            return _merge_buckets(parts)
        raise HistoryBusyError(metric_id)

    def boundary(self, metric_id: str) -> int | None:
        """The metric's compacted boundary: readings before it are in chunks."""
        rows = self.executor.read(q.METRIC_BOUNDARY, {"metric_id": metric_id})
        return rows[0]["through"] if rows else None

    def history(self, metric_id: str, start_ms: int | None, end_ms: int | None) -> History:
        """The boundary and the summaries of the chunks overlapping a window, oldest first."""
        rows = self.executor.read(
            q.CHUNKS_OVERLAPPING, {"metric_id": metric_id, **time_range(start_ms, end_ms)}
        )
        return _history(rows[0] if rows else None)

    def last_chunk(self, metric_id: str) -> History:
        """The boundary and the newest chunk (if any)."""
        rows = self.executor.read(q.LAST_CHUNK, {"metric_id": metric_id})
        return _history(rows[0] if rows else None)

    def chunk_columns(
        self, metric_id: str, chunk: ChunkSummary
    ) -> tuple[np.ndarray, np.ndarray, str | None] | None:
        """A chunk's timestamps and values, decoded, and its ids column as stored (None:
        every id derived); None if the chunk is gone or not at its version."""
        rows = self._chunk_rows(metric_id, [chunk], with_ids=True)
        if not rows:
            return None
        [row] = rows
        return codec.decode_times(row["times"]), codec.decode_values(row["vals"]), row["ids"]

    def chunk_readings(
        self, metric_id: str, chunks: Sequence[ChunkSummary]
    ) -> dict[str, ReadingSeries] | None:
        """The readings of chunks, decoded; None if one is gone or not at its version."""
        return self._chunk_columns(metric_id, chunks, with_ids=True)

    def _compacted(
        self,
        metric_id: str,
        start: int,
        end: int,
        through: int,
        limit: int | None,
        newest: bool,
        after: PageKey | None = None,
    ) -> ReadingSeries | None:
        """Compacted readings start <= timestamp < end (the oldest or newest `limit`, after
        the keyset `after`); None if the boundary is no longer `through`."""
        history = self.history(metric_id, start, end)
        if history.through != through:
            return None
        ordered = history.chunks[::-1] if newest else history.chunks
        found: list[ReadingSeries] = []
        total = 0
        while ordered and (limit is None or total < limit):
            # The fewest chunks that surely hold the readings still wanted (a chunk lying
            # wholly inside the window counts in full), and never more than about
            # READ_BATCH readings in one reply (as raw spans, see _read_raw).
            group: list[ChunkSummary] = []
            inside = 0
            held = 0
            for chunk in ordered:
                group.append(chunk)
                held += chunk.readings
                if start <= chunk.first_ms and chunk.last_ms < end:
                    inside += chunk.readings
                if (limit is not None and inside >= limit - total) or held >= READ_BATCH:
                    break
            ordered = ordered[len(group) :]
            columns = self._chunk_columns(metric_id, group, with_ids=True)
            if columns is None:
                return None
            for chunk in group:
                part = _in_window(columns[chunk.id], start, end, after)
                found.append(part)
                total += len(part)
        both = concat(found[::-1] if newest else found)
        if limit is not None and len(both) > limit:
            both = take(both, slice(len(both) - limit, None) if newest else slice(0, limit))
        return both

    def _compacted_buckets(
        self, metric_id: str, start: int, end: int, width: int, through: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] | None:
        history = self.history(metric_id, start, end)
        if history.through != through:
            return None
        summaries = []
        straddling = []
        for chunk in history.chunks:
            bucket = (chunk.first_ms - start) // width
            inside = start <= chunk.first_ms and chunk.last_ms < end
            if inside and bucket == (chunk.last_ms - start) // width:
                summaries.append((bucket, chunk.low, chunk.high, chunk.readings))
            else:
                straddling.append(chunk)
        parts = []
        if summaries:
            index, low, high, count = zip(*summaries, strict=True)
            parts.append(
                (
                    np.array(index, dtype=np.int64),
                    np.array(low, dtype=np.float64),
                    np.array(high, dtype=np.float64),
                    np.array(count, dtype=np.int64),
                )
            )
        if straddling:
            columns = self._chunk_times(metric_id, straddling, with_values=True)
            if columns is None:
                return None
            times, values = columns
            keep = (times >= start) & (times < end)
            parts.append(_buckets_of(times[keep], values[keep], start, width))
        return parts

    def _chunk_columns(
        self, metric_id: str, chunks: Sequence[ChunkSummary], with_ids: bool
    ) -> dict[str, ReadingSeries] | None:
        rows = self._chunk_rows(metric_id, chunks, with_ids)
        if rows is None:
            return None
        return {
            row["id"]: codec.decode_chunk(
                row["times"], row["vals"], row["ids"] if with_ids else None
            )
            for row in rows
        }

    def _chunk_times(
        self, metric_id: str, chunks: Sequence[ChunkSummary], with_values: bool = False
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The timestamps (and values) of chunks, in chunk order, without their ids."""
        rows = self._chunk_rows(metric_id, chunks, with_ids=False)
        if rows is None:
            return None
        by_id = {row["id"]: row for row in rows}
        ordered = [by_id[chunk.id] for chunk in chunks]
        times = np.concatenate([codec.decode_times(row["times"]) for row in ordered])
        if not with_values:
            return times, np.zeros(0)
        values = np.concatenate([codec.decode_values(row["vals"]) for row in ordered])
        return times, values

    def _chunk_rows(
        self, metric_id: str, chunks: Sequence[ChunkSummary], with_ids: bool
    ) -> list[Row] | None:
        if not chunks:
            return []
        rows = self.executor.read(
            q.CHUNK_COLUMNS,
            {"metric_id": metric_id, "chunk_ids": [c.id for c in chunks], "with_ids": with_ids},
        )
        versions = {row["id"]: row["version"] for row in rows}
        if any(versions.get(chunk.id) != chunk.version for chunk in chunks):
            return None
        return rows

    def _raw_ids_stored(self, metric_id: str, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        [row] = self.executor.read(q.RAW_IDS_STORED, {"metric_id": metric_id, "ids": ids})
        return set(row["ids"])

    def compaction_targets(self, after: str, limit: int) -> list[CompactionTarget]:
        """A page of every owner's metrics by id, after `after` ("" for the first page)."""
        rows = self.executor.read(q.METRICS_PAGE, {"after": after, "limit": limit})
        return [CompactionTarget(row["id"], row["through"], row["latest"]) for row in rows]

    def chain(self, metric_id: str) -> Chain:
        """Each raw reading with its NEXT targets, and the LATEST_READING ids: for invariant
        checks (the chain is the raw window; compacted readings have no links)."""
        rows = self.executor.read(q.CHAIN_FACTS, {"metric_id": metric_id})
        readings = [row for row in rows if row["id"] is not None]  # none: no readings
        return Chain(
            links=[ChainLink(r["id"], int(r["timestamp"]), r["next_ids"]) for r in readings],
            latest_ids=frozenset(row["latest_id"] for row in readings),
        )


def _in_window(series: ReadingSeries, start: int, end: int, after: PageKey | None) -> ReadingSeries:
    """The readings start <= timestamp < end, and after the keyset key `after` if given."""
    times = series.timestamps_ms
    keep = (times >= start) & (times < end)
    if after is not None:
        after_ms, after_id = after
        at_key = times == after_ms
        if at_key.any():
            at_key &= np.array([i <= after_id for i in series.ids], dtype=bool)
            keep &= ~at_key
    return take(series, keep)


def merge_readings(
    existing: ReadingSeries, arrivals: Sequence[NewReading]
) -> tuple[ReadingSeries, int]:
    """A chunk's readings with new ones merged in (time, id) order; an id the chunk has is
    not added. Returns the merged readings and how many were added."""
    known = set(existing.ids)
    new = [r for r in arrivals if r.id not in known]
    if not new:
        return existing, 0
    rows = list(
        zip(existing.timestamps_ms.tolist(), existing.ids, existing.values.tolist(), strict=True)
    )
    rows += [(r.timestamp_ms, r.id, r.value) for r in new]
    rows.sort(key=lambda row: (row[0], row[1]))
    return (
        ReadingSeries(
            ids=[row[1] for row in rows],
            timestamps_ms=np.array([row[0] for row in rows], dtype=np.int64),
            values=np.array([row[2] for row in rows], dtype=np.float64),
        ),
        len(new),
    )


def chunk_params(
    series: ReadingSeries,
    replacing: ChunkSummary | None,
    size: int | None = None,
    ids_derived: bool = False,
) -> list[dict[str, Any]]:
    """REPLACE_CHUNKS' `chunks` for readings that replace a chunk (or make new ones): cut
    in pieces of `size` readings (default: only past CHUNK_READINGS_MAX, into pieces of
    CHUNK_READINGS); the first piece keeps the replaced chunk's id, at its next version.
    `ids_derived`: see codec.encode_chunk."""
    if size is None:
        size = codec.CHUNK_READINGS if len(series) > codec.CHUNK_READINGS_MAX else len(series)
    params = []
    for n, piece in enumerate(codec.cut(series, size)):
        chunk = codec.encode_chunk(piece, ids_derived)
        reuse = replacing if n == 0 else None
        params.append(
            {
                "id": new_id() if reuse is None else reuse.id,
                "version": 1 if reuse is None else reuse.version + 1,
                "first": chunk.first_ms,
                "last": chunk.last_ms,
                "readings": chunk.count,
                "low": chunk.low,
                "high": chunk.high,
                "total": chunk.total,
                "times": chunk.times,
                "vals": chunk.vals,
                "ids": chunk.ids,
            }
        )
    return params


def _buckets_of(
    times: np.ndarray, values: np.ndarray, start: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Readings (in time order) as buckets of `width` ms from `start`: index, low, high, count."""
    if len(times) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, np.zeros(0), np.zeros(0), empty
    index = (times - start) // width
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    return (
        index[starts],
        np.minimum.reduceat(values, starts),
        np.maximum.reduceat(values, starts),
        np.diff(np.r_[starts, len(index)]),
    )


def _merge_buckets(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> BucketSeries:
    """Bucket tables joined: a bucket in several (at the boundary) gets the lowest low,
    the highest high and the sum of the counts."""
    index = np.concatenate([p[0] for p in parts])
    low = np.concatenate([p[1] for p in parts])
    high = np.concatenate([p[2] for p in parts])
    count = np.concatenate([p[3] for p in parts])
    keys, where = np.unique(index, return_inverse=True)
    out_low = np.full(len(keys), np.inf)
    out_high = np.full(len(keys), -np.inf)
    np.minimum.at(out_low, where, low)
    np.maximum.at(out_high, where, high)
    return BucketSeries(
        index=keys.astype(np.int64),
        low=out_low,
        high=out_high,
        readings=np.bincount(where, weights=count, minlength=len(keys)).astype(np.int64),
    )
