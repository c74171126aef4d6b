"""Put newly stored anomalies into incidents: called by every detection job (scans too).

Anomalies of one owner's metrics join one incident when their events are within
INCIDENT_GAP_SECONDS of each other and their services are the same or linked by DEPENDS_ON
within INCIDENT_MAX_HOPS (either direction). The anomalies of one job are split into
clusters (events close in time); where each cluster goes is decided by one graph statement
per batch of at most WRITE_BATCH anomalies (`IncidentRepository.join_or_open`), so
concurrent jobs never open two incidents for the same events, a re-run changes nothing,
a reading already in an incident never opens another, and a resolved incident is not
opened again by a later judgement of its readings.

Muted anomalies (found in a maintenance window) make none: they are stored, but open or join
no incident, so nobody is told of them.

Only recent anomalies make incidents: a cluster whose events all ended more than
INCIDENT_RESOLVE_SECONDS before now (reading time) is history, an incident that would be
resolved already. A job over last month's readings stores its anomalies, but pages nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from common.anomalies.models import NewAnomaly
from common.epoch import now_ms
from common.graph.params import batches
from common.incidents.models import IncidentJoin
from common.incidents.repository import IncidentRepository
from common.metrics.models import MetricRef
from common.metrics.repository import MetricRepository
from common.services.dependencies import related_service_ids
from common.services.repository import ServiceRepository
from common.settings import Settings


class IncidentGraph(Protocol):
    """The repositories incidents are built and read with (common.stores.Repositories has
    them all)."""

    @property
    def services(self) -> ServiceRepository: ...
    @property
    def metrics(self) -> MetricRepository: ...
    @property
    def incidents(self) -> IncidentRepository: ...


def clusters(anomalies: Sequence[NewAnomaly], gap_ms: int) -> list[list[NewAnomaly]]:
    """Group anomalies whose events are within `gap_ms` of each other (by event span)."""
    ordered = sorted(anomalies, key=lambda a: (a.event_start_ms, a.timestamp_ms))
    groups: list[list[NewAnomaly]] = []
    group_end_ms = 0
    for anomaly in ordered:
        if groups and anomaly.event_start_ms <= group_end_ms + gap_ms:
            groups[-1].append(anomaly)
            group_end_ms = max(group_end_ms, anomaly.event_end_ms)
        else:
            groups.append([anomaly])
            group_end_ms = anomaly.event_end_ms
    return groups


def build_incidents(
    graph: IncidentGraph,
    metric: MetricRef,
    anomalies: Sequence[NewAnomaly],
    settings: Settings,
) -> list[IncidentJoin]:
    """Put the stored `anomalies` of `metric` (with the ids they are stored under, as
    `AnomalyRepository.save` returns them) into incidents; returns what changed, one entry
    per cluster and incident."""
    anomalies = [a for a in anomalies if not a.muted]  # in a maintenance window
    gap_ms = settings.incident_gap_seconds * 1000
    history_before_ms = now_ms() - settings.incident_resolve_seconds * 1000
    recent = [
        cluster
        for cluster in clusters(anomalies, gap_ms)
        if max(a.event_end_ms for a in cluster) >= history_before_ms
    ]
    if not recent:
        return []
    related = related_service_ids(graph.services, metric.service_id, settings.incident_max_hops)
    related_metric_ids = graph.metrics.ids_in_services(sorted(related))
    changes: list[IncidentJoin] = []
    for cluster in recent:
        into: str | None = None
        for batch in batches(cluster):
            change = graph.incidents.join_or_open(
                metric.owner_id,
                [a.id for a in batch],
                related_metric_ids,
                start_ms=min(a.event_start_ms for a in cluster),
                end_ms=max(a.event_end_ms for a in cluster),
                gap_ms=gap_ms,
                into=into,
            )
            if change is None:
                continue
            if into == change.incident_id:  # the same incident as the batch before
                last = changes.pop()
                change = IncidentJoin(change.incident_id, last.opened, last.joined + change.joined)
            changes.append(change)
            into = change.incident_id
    return changes
