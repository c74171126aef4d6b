"""Metrics and their readings in the graph. Scoped methods take the caller's `owner_id`:
another user's metric is not found, exactly as if it did not exist. Times are epoch ms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from common.edits import NameEdit
from common.epoch import from_epoch_ms, now_ms
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
    write_naming,
)
from common.graph.params import (
    MAX_MS,
    MIN_MS,
    NO_LIMIT,
    READ_BATCH,
    KeysetPage,
    keyset_page,
    new_node,
    time_range,
)
from common.ids import new_id
from common.metrics import queries as q
from common.metrics.models import (
    BucketSeries,
    Chain,
    ChainLink,
    CreatedMetrics,
    FoundMetric,
    Metric,
    MetricRef,
    NamedMetric,
    NewReading,
    Reading,
    ReadingSeries,
    ServiceKey,
    WantedMetric,
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
    )


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


def _take(series: ReadingSeries, part: slice) -> ReadingSeries:
    return ReadingSeries(
        ids=series.ids[part],
        timestamps_ms=series.timestamps_ms[part].copy(),
        values=series.values[part].copy(),
    )


def _joined(pages: list[ReadingSeries]) -> ReadingSeries:
    if len(pages) == 1:
        return pages[0]
    return ReadingSeries(
        ids=[reading_id for page in pages for reading_id in page.ids],
        timestamps_ms=np.concatenate([page.timestamps_ms for page in pages]),
        values=np.concatenate([page.values for page in pages]),
    )


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

    def appended_since(self, since_ms: int | None) -> list[MetricRef]:
        """Metrics that received readings at or after `since_ms` (server time), all owners."""
        since = MIN_MS if since_ms is None else since_ms
        return [
            _metric_ref(row)
            for row in self.executor.read(q.METRICS_APPENDED_SINCE, {"since": since})
        ]

    def ids_in_services(self, service_ids: Sequence[str]) -> list[str]:
        rows = self.executor.read(q.METRIC_IDS_OF_SERVICES, {"service_ids": list(service_ids)})
        return [row["id"] for row in rows]


# Placing a batch again after a concurrent append moved its neighbours: rare (two clients
# appending to one metric at once), and each attempt places what the last one could not.
APPEND_ATTEMPTS = 8

Latest = Mapping[str, Key | None]  # metric id -> its newest reading's key (None: no readings)


class ReadingRepository:
    def __init__(self, executor: CypherExecutor):
        self.executor = executor

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
        self, batches: Mapping[str, Sequence[NewReading]], latest: Latest | None = None
    ) -> dict[str, int]:
        """Store readings in the chains of several metrics; how many were new, per metric.

        A reading whose id is already stored for its metric is skipped (and so is a repeat
        within a batch: the first one wins). Readings older than a metric's newest are
        spliced in at their place, in time proportional to what is spliced. One statement
        for the whole batch: no chain is ever seen half-linked; the caller bounds the batch
        (the API: MAX_BATCH_READINGS). `latest`, when the caller has just read it, saves a
        read; a stale one only costs a second attempt. A metric that does not exist (or is
        deleted meanwhile) stores nothing.
        """
        pending = {m: in_chain_order(rs) for m, rs in batches.items() if rs}
        stored = dict.fromkeys(batches, 0)
        known = dict(latest or {})
        for attempt in range(APPEND_ATTEMPTS):
            if not pending:
                return stored
            if attempt or any(m not in known for m in pending):
                known = self._latest(list(pending))
                pending = {m: rs for m, rs in pending.items() if m in known}
            if attempt:  # a gap left out by the last attempt may be readings stored since
                pending = self._unstored(pending)
            gaps = self._place(pending, known)
            placed = self._write(gaps)
            retry: dict[str, list[NewReading]] = {}
            for index, gap in enumerate(gaps):
                if index in placed:
                    stored[gap.metric_id] += placed[index]
                else:
                    retry.setdefault(gap.metric_id, []).extend(gap.readings)
            pending = {m: in_chain_order(rs) for m, rs in retry.items()}
        if not pending:
            return stored
        raise DependencyUnavailableError(
            GRAPH, f"readings of metric {next(iter(pending))} kept racing other appends; retry"
        )

    def _latest(self, metric_ids: list[str]) -> dict[str, Key | None]:
        """Each existing metric's newest reading's key (None: no readings)."""
        rows = self.executor.read(q.LATEST_READINGS, {"metric_ids": metric_ids})
        return {
            row["id"]: None
            if row["latest_id"] is None
            else (int(row["latest_timestamp"]), row["latest_id"])
            for row in rows
        }

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
        late readings placed run by run among the stored ones.

        (Once old readings are compacted into chunks (issue 23), readings older than a
        metric's raw window are merged into its chunks here, before the chain is looked at.)
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

    def _write(self, gaps: list[Gap]) -> dict[int, int]:
        """Run APPEND_READINGS for the gaps: readings stored, per gap it placed."""
        if not gaps:
            return {}
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
                "now": now_ms(),
                "metric_ids": metric_ids,
                "metric_gap_first": metric_first,
                "metric_gap_last": [*metric_first[1:], len(gaps)],
                "gap_tail": [gap.tail for gap in gaps],
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

    def read_window(
        self,
        metric_id: str,
        start_ms: int | None,
        end_ms: int | None,
        limit: int | None = None,
        newest: bool = False,
    ) -> ReadingSeries:
        """Readings with start <= timestamp < end in time order, by index range.

        With a limit, the oldest `limit` of the window, or the newest with `newest=True`.
        A window of more than READ_BATCH readings is read as spans of time holding about
        that many each (`_read_spans`): one reply of 100,000 readings held the embedded
        server's threads for seconds under load, and other tenants' requests with them.
        """
        window = time_range(start_ms, end_ms)
        [extent] = self.executor.read(q.WINDOW_EXTENT, {"metric_id": metric_id, **window})
        if extent["readings"] <= READ_BATCH:
            params = {"metric_id": metric_id, **window, "limit": limit or NO_LIMIT}
            [row] = self.executor.read(q.READ_WINDOW_NEWEST if newest else q.READ_WINDOW, params)
            series = _columns(row)
            if newest:  # newest first
                return _take(series, slice(None, None, -1))
            return series
        series = self._read_spans(metric_id, window, extent, limit, newest)
        if limit is not None and len(series) > limit:
            return _take(series, slice(-limit, None) if newest else slice(None, limit))
        return series

    def _read_spans(
        self,
        metric_id: str,
        window: dict[str, int],
        extent: Row,
        limit: int | None,
        newest: bool,
    ) -> ReadingSeries:
        """The window in equal spans of time, about READ_BATCH readings each where they are
        evenly spread, from the end the limit keeps, until the limit is reached. The spans
        cover the whole window, so a reading stored meanwhile is not missed."""
        spans = -(-int(extent["readings"]) // READ_BATCH)
        width = -(-(int(extent["last"]) - int(extent["first"]) + 1) // spans)
        cuts = [int(extent["first"]) + width * k for k in range(1, spans)]
        bounds = list(zip([window["start"], *cuts], [*cuts, window["end"]], strict=True))
        pages: list[ReadingSeries] = []
        wanted = NO_LIMIT if limit is None else limit
        for low, high in reversed(bounds) if newest else bounds:
            span = {"metric_id": metric_id, "start": low, "end": high, "limit": NO_LIMIT}
            [row] = self.executor.read(q.READ_WINDOW, span)
            pages.append(_columns(row))
            wanted -= len(pages[-1])
            if wanted <= 0:
                break
        return _joined(pages[::-1] if newest else pages)

    def list_page(self, metric_id: str, page: KeysetPage) -> ReadingSeries:
        """A page of readings in time order, as columns."""
        if page.after is None:  # the first page is the window's oldest: no cursor to skip
            window = time_range(page.start_ms, page.end_ms)
            [row] = self.executor.read(
                q.READ_WINDOW, {"metric_id": metric_id, **window, "limit": page.size}
            )
        else:
            [row] = self.executor.read(q.LIST_READINGS_AFTER, keyset_page(metric_id, page))
        return _columns(row)

    def first_timestamp(
        self, metric_id: str, start_ms: int | None, end_ms: int | None
    ) -> int | None:
        """Epoch ms of the oldest reading with start <= timestamp < end; None if none."""
        [row] = self.executor.read(
            q.WINDOW_FIRST, {"metric_id": metric_id, **time_range(start_ms, end_ms)}
        )
        return None if row["first"] is None else int(row["first"])

    def window_buckets(
        self, metric_id: str, start_ms: int, end_ms: int, width_ms: int
    ) -> BucketSeries:
        """Readings start_ms <= timestamp < end_ms as buckets of width_ms (min, max, count),
        aggregated by the engine; empty buckets are left out."""
        rows = self.executor.read(
            q.WINDOW_BUCKETS,
            {"metric_id": metric_id, "start": start_ms, "end": end_ms, "width": width_ms},
        )
        return BucketSeries(
            index=np.array([row["bucket"] for row in rows], dtype=np.int64),
            low=np.array([row["low"] for row in rows], dtype=np.float64),
            high=np.array([row["high"] for row in rows], dtype=np.float64),
            readings=np.array([row["readings"] for row in rows], dtype=np.int64),
        )

    def chain(self, metric_id: str) -> Chain:
        """Each reading with its NEXT targets, and the LATEST_READING ids: for invariant checks."""
        rows = self.executor.read(q.CHAIN_FACTS, {"metric_id": metric_id})
        readings = [row for row in rows if row["id"] is not None]  # none: no readings
        return Chain(
            links=[ChainLink(r["id"], int(r["timestamp"]), r["next_ids"]) for r in readings],
            latest_ids=frozenset(row["latest_id"] for row in readings),
        )
