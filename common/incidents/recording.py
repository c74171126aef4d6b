"""What one judgement of a metric leaves in the graph: its anomalies, capped and stored, and
the incidents they make. Detection jobs call this; so does any other judge (scans, sweeps):
one anomaly per reading and one incident per event hold whoever calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from common.anomalies.models import NewAnomaly
from common.anomalies.repository import AnomalyRepository
from common.anomalies.service import muted_in_windows, strongest
from common.incidents.building import IncidentGraph, build_incidents
from common.incidents.models import IncidentJoin
from common.maintenance.repository import MaintenanceRepository
from common.metrics.models import MetricRef
from common.settings import Settings


class RecordingGraph(IncidentGraph, Protocol):
    """The repositories a judgement is recorded with (common.stores.Repositories has them)."""

    @property
    def anomalies(self) -> AnomalyRepository: ...
    @property
    def maintenance(self) -> MaintenanceRepository: ...


@dataclass(frozen=True)
class RecordedAnomalies:
    found: int  # anomalies the judgement offered
    stored: int  # stored (new, or a reading flagged before gaining this finding)
    dropped: int  # over JOB_MAX_ANOMALIES: the weakest, not stored
    kept_min_score: float | None  # the lowest score kept when some were dropped
    incidents: list[IncidentJoin]


def record_anomalies(
    graph: RecordingGraph,
    metric: MetricRef,
    anomalies: Sequence[NewAnomaly],
    job_id: str | None,
    settings: Settings,
) -> RecordedAnomalies:
    """Store the strongest JOB_MAX_ANOMALIES of `anomalies` and put the ones outside the
    metric's maintenance windows into incidents.

    Both writes go in bounded batches (AnomalyRepository.save, build_incidents), so a
    judgement flagging everything never holds the graph for long. Idempotent: a re-run
    stores the same and changes no incident.
    """
    # Those of readings in a maintenance window are stored muted, and make no incident.
    anomalies = muted_in_windows(graph.maintenance, metric, anomalies)
    kept, dropped = strongest(anomalies, settings.job_max_anomalies)
    stored = graph.anomalies.save(metric.id, kept, job_id)
    changes = build_incidents(graph, metric, stored, settings)
    return RecordedAnomalies(
        found=len(anomalies),
        stored=len(stored),
        dropped=dropped,
        kept_min_score=min(a.score for a in kept) if dropped and kept else None,
        incidents=changes,
    )
