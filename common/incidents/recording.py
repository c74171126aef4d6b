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
from common.errors import ConflictError
from common.incidents.building import IncidentGraph, build_incidents
from common.incidents.models import IncidentJoin
from common.maintenance.repository import MaintenanceRepository
from common.metrics.models import MetricRef
from common.settings import Settings

# Reads of the windows and writes of a judgement's anomalies, at most, when windows keep
# changing in between (each change is a person's request: more than a few is a loop).
WINDOW_CHANGES_TRIED = 5


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
    anomalies, kept, dropped, stored = _store_under_windows(
        graph, metric, anomalies, job_id, settings
    )
    changes = build_incidents(graph, metric, stored, settings)
    return RecordedAnomalies(
        found=len(anomalies),
        stored=len(stored),
        dropped=dropped,
        kept_min_score=min(a.score for a in kept) if dropped and kept else None,
        incidents=changes,
    )


def _store_under_windows(
    graph: RecordingGraph,
    metric: MetricRef,
    anomalies: Sequence[NewAnomaly],
    job_id: str | None,
    settings: Settings,
) -> tuple[list[NewAnomaly], list[NewAnomaly], int, list[NewAnomaly]]:
    """Mark muted the anomalies in the metric's maintenance windows and store the strongest
    JOB_MAX_ANOMALIES, as one decision: a window changed between the read of the windows
    and the write (which checks their generation, SAVE_ANOMALIES_UNDER_WINDOWS) makes it
    read them again and store again (idempotent: one anomaly per reading). Returns the
    marked anomalies, those kept, how many were dropped, and those stored."""
    for _ in range(WINDOW_CHANGES_TRIED):
        # The generation first: a change after it, even before the windows are read, is
        # seen by the write as a change.
        seen = graph.maintenance.windows_seq(metric.owner_id)
        marked = muted_in_windows(graph.maintenance, metric, anomalies)
        kept, dropped = strongest(marked, settings.job_max_anomalies)
        stored = graph.anomalies.save(metric.id, kept, job_id, (metric.owner_id, seen))
        # Fewer stored than kept: readings gone (a metric being deleted, a reading not
        # stored), or the windows changed meanwhile.
        if len(stored) == len(kept) or graph.maintenance.windows_seq(metric.owner_id) == seen:
            return marked, kept, dropped, stored
    raise ConflictError(
        f"metric {metric.id}: its maintenance windows changed {WINDOW_CHANGES_TRIED} times "
        "while its anomalies were being stored; run it again"
    )
