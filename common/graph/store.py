"""GraphStore: the only code that talks to the graph. Every method returns models.

Scoped methods take the caller's `owner_id`: another user's service or metric is simply
not found, exactly as if it did not exist.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from common.embedded import resolve_urls
from common.errors import ConflictError, NotFoundError
from common.graph import queries as q
from common.graph import schema
from common.graph.executors import (
    CypherExecutor,
    FalkorDBExecutor,
    Neo4jExecutor,
    Row,
    UniqueConstraintError,
)
from common.ids import anomaly_id, new_id
from common.incidents.models import (
    DependencyEdges,
    Incident,
    IncidentJoin,
    IncidentMember,
    IncidentStatus,
    ServiceDependencies,
    ServiceRef,
)
from common.models import (
    Anomaly,
    AnomalyPoint,
    BucketSeries,
    Metric,
    MetricRef,
    NewReading,
    Reading,
    ReadingSeries,
    Service,
    User,
    Verdict,
    from_epoch_ms,
    to_epoch_ms,
)
from common.notifications.models import NotificationChannel, PayloadFormat
from common.settings import Settings

# Open ends of a time range, as epoch ms (both engines compare 64-bit integers).
MIN_MS = -(2**62)
MAX_MS = 2**62
# "No limit" for a LIMIT clause: FalkorDB returns nothing for a LIMIT past 32 bits.
NO_LIMIT = 2**31 - 1
NEO4J_SCHEMES = ("neo4j://", "neo4j+s://", "neo4j+ssc://", "bolt://", "bolt+s://", "bolt+ssc://")


def now_ms() -> int:
    return int(time.time() * 1000)


def executor_for(settings: Settings) -> CypherExecutor:
    # Only the embedded default needs resolving (and its server); Redis is not needed here.
    graph_url = resolve_urls(settings).graph_url if settings.uses_embedded else settings.graph_url
    if graph_url.startswith(NEO4J_SCHEMES):
        return Neo4jExecutor(
            graph_url,
            settings.neo4j_user,
            settings.neo4j_password.get_secret_value(),
            settings.neo4j_database,
        )
    if graph_url.startswith("falkordb://"):
        return FalkorDBExecutor.from_url(graph_url, settings.graph_name)
    raise ValueError(
        f"GRAPH_URL {graph_url!r} is not supported: use 'embedded', falkordb://host:port, "
        "neo4j://, neo4j+s:// or bolt://"
    )


def _range(start: datetime | None, end: datetime | None) -> dict[str, int]:
    return {
        "start": MIN_MS if start is None else to_epoch_ms(start),
        "end": MAX_MS if end is None else to_epoch_ms(end),
    }


def _keyset_page(
    metric_id: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    after: tuple[int, str] | None,
) -> dict[str, Any]:
    """The parameters of a keyset page query (LIST_READINGS_AFTER, LIST_ANOMALIES): rows
    strictly after `after` = (epoch ms, id), the index range starting at its timestamp. No
    `after` is the first page: ($start, "") skips nothing, as every id is above ""."""
    bounds = _range(start, end)
    after_ms, after_id = (bounds["start"], "") if after is None else after
    return {
        "metric_id": metric_id,
        **bounds,
        "start": max(bounds["start"], after_ms),
        "after_timestamp": after_ms,
        "after_id": after_id,
        "limit": limit,
    }


def _service(row: dict[str, Any]) -> Service:
    return Service(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        owner_id=row["owner_id"],
        created_at=from_epoch_ms(row["created_at"]),
    )


def _metric(row: dict[str, Any]) -> Metric:
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
    )


def _metric_ref(row: dict[str, Any]) -> MetricRef:
    latest = row["latest_timestamp"]
    return MetricRef(
        id=row["id"],
        name=row["name"],
        service_id=row["service_id"],
        owner_id=row["owner_id"],
        latest_timestamp=None if latest is None else from_epoch_ms(latest),
    )


def _deleted(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and rows[0]["deleted"] > 0


def _moment(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else from_epoch_ms(epoch_ms)


def _anomaly(row: dict[str, Any]) -> Anomaly:
    return Anomaly(
        **{
            **row,
            "timestamp": from_epoch_ms(row["timestamp"]),
            "event_start": from_epoch_ms(row["event_start"]),
            "event_end": from_epoch_ms(row["event_end"]),
            "detected_at": from_epoch_ms(row["detected_at"]),
            "feedback_at": _moment(row.get("feedback_at")),
        }
    )


def _incident(row: dict[str, Any]) -> Incident:
    return Incident(
        id=row["id"],
        owner_id=row["owner_id"],
        status=row["status"],
        opened_at=from_epoch_ms(row["opened_at"]),
        updated_at=from_epoch_ms(row["last_joined_at"]),
        started_at=from_epoch_ms(row["started_at"]),
        ended_at=from_epoch_ms(row["ended_at"]),
        members=row["members"],
        acknowledged_at=_moment(row["acknowledged_at"]),
        resolved_at=_moment(row["resolved_at"]),
        resolved_by=row["resolved_by"],
        revision=row["revision"],
        last_change=row["last_change"],
    )


def _member(row: dict[str, Any]) -> IncidentMember:
    return IncidentMember(
        **{
            **row,
            "timestamp": from_epoch_ms(row["timestamp"]),
            "event_start": from_epoch_ms(row["event_start"]),
            "event_end": from_epoch_ms(row["event_end"]),
        }
    )


def _channel(row: dict[str, Any]) -> NotificationChannel:
    # Channels made before formats existed have none: they get the original format.
    return NotificationChannel(
        **{
            **row,
            "format": row["format"] or "neonomaly",
            "created_at": from_epoch_ms(row["created_at"]),
        }
    )


def _refs(ids: list[str], names: list[str]) -> list[ServiceRef]:
    return [ServiceRef(id=i, name=n) for i, n in zip(ids, names, strict=True)]


class GraphStore:
    def __init__(self, executor: CypherExecutor):
        self.executor = executor

    @classmethod
    def connect(cls, settings: Settings) -> GraphStore:
        return cls(executor_for(settings))

    def close(self) -> None:
        self.executor.close()

    def ping(self) -> None:
        self.executor.read(q.PING)

    def ensure_schema(self) -> None:
        """Create constraints and indexes; safe to run on every start, and concurrently."""
        schema.ensure_schema(self.executor)

    # --- users --------------------------------------------------------------------------
    def create_user(self, name: str, api_key_hash: str) -> User:
        rows = self.executor.write(
            q.CREATE_USER,
            {"id": new_id(), "name": name, "api_key_hash": api_key_hash, "created_at": now_ms()},
        )
        return User(
            id=rows[0]["id"], name=rows[0]["name"], created_at=from_epoch_ms(rows[0]["created_at"])
        )

    def find_user_by_key_hash(self, api_key_hash: str) -> User | None:
        rows = self.executor.read(q.FIND_USER_BY_KEY_HASH, {"api_key_hash": api_key_hash})
        if not rows:
            return None
        return User(
            id=rows[0]["id"], name=rows[0]["name"], created_at=from_epoch_ms(rows[0]["created_at"])
        )

    # --- services -----------------------------------------------------------------------
    def create_service(self, owner_id: str, name: str, description: str | None) -> Service:
        rows = self.executor.write(
            q.CREATE_SERVICE,
            {
                "owner_id": owner_id,
                "id": new_id(),
                "name": name,
                "description": description,
                "created_at": now_ms(),
            },
        )
        if not rows:
            raise NotFoundError(f"user {owner_id} not found")
        return _service(rows[0])

    def list_services(self, owner_id: str) -> list[Service]:
        return [
            _service(row) for row in self.executor.read(q.LIST_SERVICES, {"owner_id": owner_id})
        ]

    def get_service(self, owner_id: str, service_id: str) -> Service | None:
        rows = self.executor.read(q.GET_SERVICE, {"owner_id": owner_id, "service_id": service_id})
        return _service(rows[0]) if rows else None

    def update_service(
        self,
        owner_id: str,
        service_id: str,
        name: str | None = None,
        description: str | None = None,
        set_description: bool = False,
    ) -> Service | None:
        rows = self.executor.write(
            q.UPDATE_SERVICE,
            {
                "owner_id": owner_id,
                "service_id": service_id,
                "name": name,
                "description": description,
                "set_description": set_description,
            },
        )
        return _service(rows[0]) if rows else None

    def delete_service(self, owner_id: str, service_id: str) -> bool:
        """Delete a service with its metrics, their readings and anomalies, in one statement."""
        scope = {"owner_id": owner_id, "service_id": service_id}
        return _deleted(self.executor.write(q.DELETE_SERVICE, scope))

    # --- metrics ------------------------------------------------------------------------
    def create_metric(
        self, owner_id: str, service_id: str, name: str, description: str | None
    ) -> Metric:
        metric_id = new_id()
        rows = self._write_metric_name(
            q.CREATE_METRIC,
            {
                "owner_id": owner_id,
                "service_id": service_id,
                "id": metric_id,
                "name": name,
                "description": description,
                "created_at": now_ms(),
            },
            ConflictError(f"service {service_id} already has a metric named {name!r}"),
        )
        if not rows:
            raise NotFoundError(f"service {service_id} not found")
        metric = self.get_metric(owner_id, metric_id)
        if metric is None:  # the service was deleted just after the metric was created
            raise NotFoundError(f"service {service_id} not found")
        return metric

    def get_metric(self, owner_id: str, metric_id: str) -> Metric | None:
        rows = self.executor.read(q.GET_METRIC, {"owner_id": owner_id, "metric_id": metric_id})
        return _metric(rows[0]) if rows else None

    def find_metric_by_name(self, owner_id: str, service_id: str, name: str) -> Metric | None:
        rows = self.executor.read(
            q.FIND_METRIC_BY_NAME, {"owner_id": owner_id, "service_id": service_id, "name": name}
        )
        return _metric(rows[0]) if rows else None

    def list_metrics(self, owner_id: str, service_id: str) -> list[Metric]:
        rows = self.executor.read(q.LIST_METRICS, {"owner_id": owner_id, "service_id": service_id})
        return [_metric(row) for row in rows]

    def update_metric(
        self,
        owner_id: str,
        metric_id: str,
        name: str | None = None,
        description: str | None = None,
        set_description: bool = False,
    ) -> Metric | None:
        rows = self._write_metric_name(
            q.UPDATE_METRIC,
            {
                "owner_id": owner_id,
                "metric_id": metric_id,
                "name": name,
                "description": description,
                "set_description": set_description,
            },
            ConflictError(f"the service already has a metric named {name!r}"),
        )
        if not rows:
            return None
        return self.get_metric(owner_id, metric_id)

    def _write_metric_name(
        self, query: str, params: dict[str, Any], clash: ConflictError
    ) -> list[Row]:
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

    def delete_metric(self, owner_id: str, metric_id: str) -> bool:
        rows = self.executor.write(q.DELETE_METRIC, {"owner_id": owner_id, "metric_id": metric_id})
        return _deleted(rows)

    def get_metric_ref(self, metric_id: str) -> MetricRef | None:
        """A metric with its owner, unscoped: for workers acting on a job's metric id."""
        rows = self.executor.read(q.GET_METRIC_REF, {"metric_id": metric_id})
        return _metric_ref(rows[0]) if rows else None

    def metrics_with_readings_since(self, since: datetime | None) -> list[MetricRef]:
        """Metrics that received readings at or after `since` (server time), all owners."""
        since_ms = MIN_MS if since is None else to_epoch_ms(since)
        return [
            _metric_ref(row)
            for row in self.executor.read(q.METRICS_APPENDED_SINCE, {"since": since_ms})
        ]

    # --- readings -----------------------------------------------------------------------
    def append_readings(self, metric_id: str, readings: Sequence[NewReading]) -> int:
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
        start: datetime | None,
        end: datetime | None,
        limit: int | None = None,
        newest: bool = False,
    ) -> ReadingSeries:
        """Readings with start <= timestamp < end in time order, by index range.

        With a limit, the oldest `limit` of the window, or the newest with `newest=True`.
        """
        params: dict[str, Any] = {
            "metric_id": metric_id,
            **_range(start, end),
            "limit": limit or NO_LIMIT,
        }
        [row] = self.executor.read(q.READ_WINDOW_NEWEST if newest else q.READ_WINDOW, params)
        ids: list[str] = row["ids"]
        timestamps = np.array(row["timestamps"], dtype=np.int64)
        values = np.array(row["vals"], dtype=np.float64)
        if newest:
            ids.reverse()
            timestamps, values = timestamps[::-1].copy(), values[::-1].copy()
        return ReadingSeries(ids=ids, timestamps_ms=timestamps, values=values)

    def list_readings(
        self,
        metric_id: str,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        after: tuple[int, str] | None = None,
    ) -> ReadingSeries:
        """A page of readings in time order, as columns; `after` is the (epoch ms, id) of the
        last one seen."""
        bounds = _range(start, end)
        if after is None:  # the first page is the window's oldest `limit`: no cursor to skip
            [row] = self.executor.read(
                q.READ_WINDOW, {"metric_id": metric_id, **bounds, "limit": limit}
            )
        else:
            [row] = self.executor.read(
                q.LIST_READINGS_AFTER, _keyset_page(metric_id, start, end, limit, after)
            )
        return ReadingSeries(
            ids=row["ids"],
            timestamps_ms=np.array(row["timestamps"], dtype=np.int64),
            values=np.array(row["vals"], dtype=np.float64),
        )

    def first_timestamp(
        self, metric_id: str, start: datetime | None, end: datetime | None
    ) -> int | None:
        """Epoch ms of the oldest reading with start <= timestamp < end; None if none."""
        [row] = self.executor.read(q.WINDOW_FIRST, {"metric_id": metric_id, **_range(start, end)})
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

    def chain_facts(self, metric_id: str) -> list[dict[str, Any]]:
        """Each reading with its NEXT targets, plus the LATEST_READING id: for invariant checks."""
        return self.executor.read(q.CHAIN_FACTS, {"metric_id": metric_id})

    # --- anomalies ----------------------------------------------------------------------
    def save_anomalies(
        self, metric_id: str, points: Sequence[AnomalyPoint], job_id: str | None = None
    ) -> int:
        if not points:
            return 0
        rows = self.executor.write(
            q.SAVE_ANOMALIES,
            {
                "metric_id": metric_id,
                "job_id": job_id,
                "now": now_ms(),
                "anomalies": [
                    {
                        "id": anomaly_id(metric_id, p.reading_id, p.method),
                        "reading_id": p.reading_id,
                        "timestamp": to_epoch_ms(p.timestamp),
                        "value": p.value,
                        "expected": p.expected,
                        "lower": p.lower,
                        "upper": p.upper,
                        "score": p.score,
                        "method": p.method,
                        "event_start": to_epoch_ms(p.event_start),
                        "event_end": to_epoch_ms(p.event_end),
                        "probability": p.probability,
                        "kind": p.kind,
                        "summary": p.summary,
                    }
                    for p in points
                ],
            },
        )
        return int(rows[0]["saved"]) if rows else 0

    def list_anomalies(
        self,
        metric_id: str,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        after: tuple[int, str] | None = None,
    ) -> list[Anomaly]:
        """A page of a metric's anomalies in (timestamp, id) order; `after` is the (epoch ms,
        id) of the last one seen."""
        rows = self.executor.read(
            q.LIST_ANOMALIES, _keyset_page(metric_id, start, end, limit, after)
        )
        return [_anomaly(row) for row in rows]

    def get_anomaly(self, owner_id: str, anomaly_id: str) -> Anomaly | None:
        rows = self.executor.read(q.GET_ANOMALY, {"owner_id": owner_id, "anomaly_id": anomaly_id})
        return _anomaly(rows[0]) if rows else None

    def set_anomaly_feedback(
        self, owner_id: str, anomaly_id: str, verdict: Verdict
    ) -> Anomaly | None:
        """Record what a person said of an anomaly (the last verdict counts)."""
        rows = self.executor.write(
            q.SET_ANOMALY_FEEDBACK,
            {"owner_id": owner_id, "anomaly_id": anomaly_id, "verdict": verdict, "now": now_ms()},
        )
        return _anomaly(rows[0]) if rows else None

    # --- service dependencies -------------------------------------------------------------
    def add_dependency(self, owner_id: str, service_id: str, other_id: str) -> bool:
        """service_id DEPENDS_ON other_id; False if either is not the owner's."""
        rows = self.executor.write(
            q.ADD_DEPENDENCY,
            {"owner_id": owner_id, "service_id": service_id, "other_id": other_id},
        )
        return bool(rows)

    def remove_dependency(self, owner_id: str, service_id: str, other_id: str) -> bool:
        rows = self.executor.write(
            q.REMOVE_DEPENDENCY,
            {"owner_id": owner_id, "service_id": service_id, "other_id": other_id},
        )
        return _deleted(rows)

    def service_dependencies(self, owner_id: str, service_id: str) -> ServiceDependencies | None:
        rows = self.executor.read(
            q.SERVICE_DEPENDENCIES, {"owner_id": owner_id, "service_id": service_id}
        )
        if not rows:
            return None
        row = rows[0]
        return ServiceDependencies(
            depends_on=_refs(row["depends_on_ids"], row["depends_on_names"]),
            dependents=_refs(row["dependent_ids"], row["dependent_names"]),
        )

    def dependency_edges_near(self, service_ids: Sequence[str], max_hops: int) -> DependencyEdges:
        """DEPENDS_ON edges within `max_hops` of the services, either direction.

        A breadth-first walk, one bounded query per hop: cycles and large graphs cost at
        most `max_hops` queries over the services reached. Edges only ever link one owner's
        services, so the walk never leaves the owner.
        """
        edges: set[tuple[str, str]] = set()
        seen = set(service_ids)
        frontier = sorted(seen)
        for _ in range(max_hops):
            if not frontier:
                break
            reached: set[str] = set()
            for row in self.executor.read(q.DEPENDENCY_EDGES_OF, {"service_ids": frontier}):
                edges.update((row["id"], other) for other in row["depends_on"])
                edges.update((other, row["id"]) for other in row["dependents"])
                reached.update(row["depends_on"], row["dependents"])
            frontier = sorted(reached - seen)
            seen |= reached
        return DependencyEdges(frozenset(edges))

    def metric_ids_of_services(self, service_ids: Sequence[str]) -> list[str]:
        rows = self.executor.read(q.METRIC_IDS_OF_SERVICES, {"service_ids": list(service_ids)})
        return [row["id"] for row in rows]

    # --- incidents --------------------------------------------------------------------------
    def join_or_open_incident(
        self,
        owner_id: str,
        anomaly_ids: Sequence[str],
        related_metric_ids: Sequence[str],
        start_ms: int,
        end_ms: int,
        gap_ms: int,
    ) -> IncidentJoin | None:
        """Put a cluster of new anomalies into a related open incident, or open one.

        One statement decides (see JOIN_OR_OPEN_INCIDENT). None: every anomaly was
        already in an incident.
        """
        rows = self.executor.write(
            q.JOIN_OR_OPEN_INCIDENT,
            {
                "owner_id": owner_id,
                "anomaly_ids": list(anomaly_ids),
                "related_metric_ids": list(related_metric_ids),
                "start": start_ms,
                "end": end_ms,
                "gap": gap_ms,
                "new_id": new_id(),
                "now": now_ms(),
            },
        )
        if not rows:
            return None
        return IncidentJoin(rows[0]["id"], bool(rows[0]["opened"]), int(rows[0]["joined"]))

    def get_incident(self, owner_id: str, incident_id: str) -> Incident | None:
        rows = self.executor.read(
            q.GET_INCIDENT, {"owner_id": owner_id, "incident_id": incident_id}
        )
        return _incident(rows[0]) if rows else None

    def get_incident_by_id(self, incident_id: str) -> Incident | None:
        """Unscoped, for the notifier acting on an incident id."""
        rows = self.executor.read(q.GET_INCIDENT_BY_ID, {"incident_id": incident_id})
        return _incident(rows[0]) if rows else None

    def list_incidents(
        self, owner_id: str, status: IncidentStatus | None, offset: int, limit: int
    ) -> list[Incident]:
        rows = self.executor.read(
            q.LIST_INCIDENTS,
            {"owner_id": owner_id, "status": status, "offset": offset, "limit": limit},
        )
        return [_incident(row) for row in rows]

    def incident_members(self, incident_id: str, limit: int) -> list[IncidentMember]:
        rows = self.executor.read(q.INCIDENT_MEMBERS, {"incident_id": incident_id, "limit": limit})
        return [_member(row) for row in rows]

    def acknowledge_incident(self, owner_id: str, incident_id: str) -> Incident | None:
        rows = self.executor.write(
            q.ACKNOWLEDGE_INCIDENT,
            {"owner_id": owner_id, "incident_id": incident_id, "now": now_ms()},
        )
        return _incident(rows[0]) if rows else None

    def resolve_incident(
        self, owner_id: str, incident_id: str, resolved_by: str
    ) -> Incident | None:
        """Resolve an open incident (a resolved one is returned as it is)."""
        rows = self.executor.write(
            q.RESOLVE_INCIDENT,
            {
                "owner_id": owner_id,
                "incident_id": incident_id,
                "resolved_by": resolved_by,
                "now": now_ms(),
            },
        )
        return _incident(rows[0]) if rows else None

    def resolve_quiet_incidents(self, quiet_for_ms: int) -> list[str]:
        """Resolve the open incidents nothing joined for `quiet_for_ms`; returns their ids."""
        now = now_ms()
        rows = self.executor.write(
            q.RESOLVE_QUIET_INCIDENTS, {"cutoff": now - quiet_for_ms, "now": now}
        )
        return [row["id"] for row in rows]

    def incidents_to_notify(self, limit: int) -> list[tuple[str, str, int]]:
        """(incident id, owner id, revision notified so far) of incidents with changes not
        yet notified."""
        rows = self.executor.read(q.INCIDENTS_TO_NOTIFY, {"limit": limit})
        return [(row["id"], row["owner_id"], int(row["notified_revision"])) for row in rows]

    def mark_incident_notified(self, incident_id: str, revision: int) -> None:
        self.executor.write(
            q.MARK_INCIDENT_NOTIFIED, {"incident_id": incident_id, "revision": revision}
        )

    # --- notification channels --------------------------------------------------------------
    def create_channel(
        self, owner_id: str, url: str, secret: str, payload_format: PayloadFormat = "neonomaly"
    ) -> NotificationChannel:
        rows = self.executor.write(
            q.CREATE_CHANNEL,
            {
                "owner_id": owner_id,
                "id": new_id(),
                "type": "webhook",
                "format": payload_format,
                "url": url,
                "secret": secret,
                "created_at": now_ms(),
            },
        )
        if not rows:
            raise NotFoundError(f"user {owner_id} not found")
        return _channel(rows[0])

    def list_channels(self, owner_id: str) -> list[NotificationChannel]:
        return [_channel(r) for r in self.executor.read(q.LIST_CHANNELS, {"owner_id": owner_id})]

    def get_channel(self, owner_id: str, channel_id: str) -> NotificationChannel | None:
        rows = self.executor.read(q.GET_CHANNEL, {"owner_id": owner_id, "channel_id": channel_id})
        return _channel(rows[0]) if rows else None

    def delete_channel(self, owner_id: str, channel_id: str) -> bool:
        rows = self.executor.write(
            q.DELETE_CHANNEL, {"owner_id": owner_id, "channel_id": channel_id}
        )
        return _deleted(rows)
