"""Metrics and their readings in the graph. Scoped methods take the caller's `owner_id`:
another user's metric is not found, exactly as if it did not exist. Times are epoch ms."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from common.edits import NameEdit
from common.epoch import from_epoch_ms, now_ms
from common.errors import ConflictError, NotFoundError
from common.graph.executors import CypherExecutor, Row, UniqueConstraintError, deleted_any
from common.graph.params import MIN_MS, NO_LIMIT, KeysetPage, keyset_page, new_node, time_range
from common.methods import MetricDetection
from common.metrics import queries as q
from common.metrics.models import (
    BucketSeries,
    Chain,
    ChainLink,
    Metric,
    MetricRef,
    NewReading,
    Reading,
    ReadingSeries,
)


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
        created_at=from_epoch_ms(row["created_at"]),
        latest_reading=latest,
        detection=MetricDetection.model_validate_json(row.get("detection") or "{}"),
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


class MetricRepository:
    def __init__(self, executor: CypherExecutor):
        self.executor = executor

    def create(self, owner_id: str, service_id: str, name: str, description: str | None) -> Metric:
        params = new_node(owner_id, service_id=service_id, name=name, description=description)
        rows = self._write_name(
            q.CREATE_METRIC,
            params,
            ConflictError(f"service {service_id} already has a metric named {name!r}"),
        )
        if not rows:
            raise NotFoundError(f"service {service_id} not found")
        metric = self.get(owner_id, params["id"])
        if metric is None:  # the service was deleted just after the metric was created
            raise NotFoundError(f"service {service_id} not found")
        return metric

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
        rows = self._write_name(
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

    def _write_name(self, query: str, params: dict[str, Any], clash: ConflictError) -> list[Row]:
        """Run a statement that names a metric (CREATE_METRIC, UPDATE_METRIC); `clash` if
        the service already has that name: seen by the statement (clashes > 0), or, when
        another request took it at the same moment, refused by Neo4j's uniqueness
        constraint. No row: the service or metric is not the owner's."""
        try:
            rows = self.executor.write(query, params)
        except UniqueConstraintError as exc:
            raise clash from exc
        if rows and rows[0]["clashes"]:
            raise clash
        return rows

    def delete(self, owner_id: str, metric_id: str) -> bool:
        rows = self.executor.write(q.DELETE_METRIC, {"owner_id": owner_id, "metric_id": metric_id})
        return deleted_any(rows)

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


class ReadingRepository:
    def __init__(self, executor: CypherExecutor):
        self.executor = executor

    def append(self, metric_id: str, readings: Sequence[NewReading]) -> int:
        """Store readings in the metric's chain; returns how many were new.

        A reading whose id is already stored for this metric is skipped (and so is a repeat
        within the batch: the first one wins). Readings older than the newest are spliced in
        at their place. One statement: the chain is never seen half-linked.
        """
        if not readings:
            return 0
        unique: dict[str, NewReading] = {}
        for reading in readings:
            unique.setdefault(reading.id, reading)
        ordered = sorted(unique.values(), key=lambda r: (r.timestamp_ms, r.id))
        rows = self.executor.write(
            q.APPEND_READINGS,
            {
                "metric_id": metric_id,
                "now": now_ms(),
                "earliest": ordered[0].timestamp_ms,
                "readings": [
                    {"id": r.id, "timestamp": r.timestamp_ms, "value": r.value} for r in ordered
                ],
            },
        )
        return int(rows[0]["stored"]) if rows else 0

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
        """
        params: dict[str, Any] = {
            "metric_id": metric_id,
            **time_range(start_ms, end_ms),
            "limit": limit or NO_LIMIT,
        }
        [row] = self.executor.read(q.READ_WINDOW_NEWEST if newest else q.READ_WINDOW, params)
        series = _columns(row)
        if newest:
            series.ids.reverse()
            return ReadingSeries(
                ids=series.ids,
                timestamps_ms=series.timestamps_ms[::-1].copy(),
                values=series.values[::-1].copy(),
            )
        return series

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
