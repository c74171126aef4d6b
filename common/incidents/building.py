"""Put newly stored anomalies into incidents: called by every detection job (scans too).

Anomalies of one owner's metrics join one incident when their events are within
INCIDENT_GAP_SECONDS of each other and their services are the same or linked by DEPENDS_ON
within INCIDENT_MAX_HOPS (either direction). The anomalies of one job are split into
clusters (events close in time); where each cluster goes is decided by one graph statement
(`GraphStore.join_or_open_incident`), so concurrent jobs never open two incidents for the
same events, and a re-run changes nothing.

Only recent anomalies make incidents: a cluster whose events all ended more than
INCIDENT_RESOLVE_SECONDS before now (reading time) is history, an incident that would be
resolved already. A job over last month's readings stores its anomalies, but pages nobody.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from common.graph.store import GraphStore
from common.ids import anomaly_id
from common.incidents.models import IncidentJoin
from common.models import AnomalyPoint, MetricRef, to_epoch_ms
from common.settings import Settings


def clusters(points: Sequence[AnomalyPoint], gap_ms: int) -> list[list[AnomalyPoint]]:
    """Group points whose events are within `gap_ms` of each other (by event span)."""
    ordered = sorted(points, key=lambda p: (p.event_start, p.timestamp))
    groups: list[list[AnomalyPoint]] = []
    group_end_ms = 0
    for point in ordered:
        start_ms = to_epoch_ms(point.event_start)
        if groups and start_ms <= group_end_ms + gap_ms:
            groups[-1].append(point)
            group_end_ms = max(group_end_ms, to_epoch_ms(point.event_end))
        else:
            groups.append([point])
            group_end_ms = to_epoch_ms(point.event_end)
    return groups


def related_service_ids(store: GraphStore, service_id: str, max_hops: int) -> set[str]:
    """The service and every service linked to it by DEPENDS_ON within `max_hops`."""
    edges = store.dependency_edges_near([service_id], max_hops).edges
    return {service_id} | {end for edge in edges for end in edge}


def build_incidents(
    store: GraphStore, metric: MetricRef, points: Sequence[AnomalyPoint], settings: Settings
) -> list[IncidentJoin]:
    """Put the stored anomalies `points` of `metric` into incidents; returns what changed."""
    gap_ms = settings.incident_gap_seconds * 1000
    history_before_ms = int(time.time() * 1000) - settings.incident_resolve_seconds * 1000
    recent = [
        cluster
        for cluster in clusters(points, gap_ms)
        if max(to_epoch_ms(p.event_end) for p in cluster) >= history_before_ms
    ]
    if not recent:
        return []
    related = related_service_ids(store, metric.service_id, settings.incident_max_hops)
    related_metric_ids = store.metric_ids_of_services(sorted(related))
    changes = []
    for cluster in recent:
        change = store.join_or_open_incident(
            metric.owner_id,
            [anomaly_id(metric.id, p.reading_id, p.method) for p in cluster],
            related_metric_ids,
            start_ms=min(to_epoch_ms(p.event_start) for p in cluster),
            end_ms=max(to_epoch_ms(p.event_end) for p in cluster),
            gap_ms=gap_ms,
        )
        if change is not None:
            changes.append(change)
    return changes
