"""A maintenance window's reach into the past, applied by a worker task.

A window made, changed (what it covers) or deleted over readings already judged must reach
them: the anomalies stored in what it covers now are muted (and leave the open incidents
that held them; an incident left with none is resolved by 'maintenance', one left with
some is updated: both are told of by webhook, once a reach), and the metrics
it covered before or covers now are marked so that the next sweep rebuilds their detector
from their history, learning from exactly the readings outside the windows as they are
now (common.scans).

The change itself is one statement that also bumps the window's reach generation (see
common.maintenance.queries); the request then queues `neonomaly.window-reach` and answers.
The task (`apply_reach`) reads the window as it is, applies the newest generation and
records it applied. Every step is idempotent (a muted anomaly is not muted again; marking a
metric for a rebuild twice rebuilds it once), so a task that died half-way is simply run
again: by Celery's redelivery (acks_late), or by the periodic `neonomaly.finish-window-
reaches` (`requeue_pending`), which queues it again for windows pending for longer than
REACH_TAKEN_AS_LOST_AFTER_SECONDS.

Work is linear in what is touched: one read of the metrics each target covers, then writes
naming at most WRITE_BATCH metrics and muting at most WRITE_BATCH anomalies each, so that
another tenant's write waits for one batch at most.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.epoch import now_ms
from common.maintenance.models import RelearnTarget
from common.maintenance.repository import MaintenanceRepository
from common.maintenance.service import ReachQueue, past_spans, relearn_target

# A reach asked for this long ago and still not applied is taken as lost and queued again
# (a reach running this long is queued twice: harmless, every step is idempotent).
REACH_TAKEN_AS_LOST_AFTER_SECONDS = 120
# Windows queued again at most per look (the next look takes the rest).
REQUEUE_BATCH = 200


@dataclass(frozen=True)
class ReachReport:
    window_id: str
    generation: int
    muted: int
    resolved: list[str]  # incidents left with no member, resolved by 'maintenance'
    updated: list[str]  # incidents left with fewer members, still open
    relearnt: int  # metrics marked for a rebuild


def apply_reach(
    repository: MaintenanceRepository,
    window_id: str,
    held_by_sweeps: Callable[[Sequence[str]], set[str]],
    sweeps_judge_through_ms: int,
) -> ReachReport | None:
    """Apply the window's reach into the past, as the window is now; None when there was
    nothing to do (no such window, or its newest generation is applied already).
    `held_by_sweeps`: of these metrics, those a sweep's batch holds now
    (common.scans.states.ScanStates.held); `sweeps_judge_through_ms`: the newest reading
    time a sweep judges now (common.scans.judging.horizon_ms: a little ahead of now)."""
    reach = repository.reach_of(window_id)
    if reach is None or not reach.pending:
        return None
    window, owner_id = reach.window, reach.owner_id
    covered: dict[tuple[str | None, str | None], list[tuple[str, int | None]]] = {}

    def metrics_of(target: RelearnTarget) -> list[tuple[str, int | None]]:
        key = (target.service_id, target.metric_id)
        if key not in covered:  # one read a target, however many entries name it
            covered[key] = repository.covered_metrics(owner_id, *key)
        return covered[key]

    targets = list(reach.covered_before)
    muted = 0
    if not reach.deleted:
        covers = relearn_target(window)
        targets.append(covers)
        metric_ids = [metric_id for metric_id, _ in metrics_of(covers)]
        muted = repository.mute(owner_id, window_id, metric_ids, past_spans(window, now_ms()))
    # Deleted or not: a run that died after its mute left the incidents flagged, and the
    # window may have been deleted before this run.
    incidents = repository.settle_muted(owner_id, window_id)
    # Each metric judged from a target's start on is relearnt from the earliest of its
    # targets' starts. So is one a sweep's batch holds now, whatever it was judged through:
    # the batch may have read the windows before this change and not saved its marks yet,
    # and its state would then keep what it learnt inside the window (RELEARN_METRICS). The
    # holds are read before the statement reads judged_through: a batch that is not held
    # then has either saved its marks (the statement sees them) or not read the windows yet.
    # Targets starting after what sweeps judge cover nothing judged or being judged.
    starts: dict[str, int] = {}
    for target in targets:
        for metric_id, judged_through in metrics_of(target):
            if target.from_ms <= sweeps_judge_through_ms or (
                judged_through is not None and judged_through >= target.from_ms
            ):
                starts[metric_id] = min(starts.get(metric_id, target.from_ms), target.from_ms)
    held = held_by_sweeps(sorted(starts))
    relearnt = repository.relearn(
        [(metric_id, from_ms, metric_id in held) for metric_id, from_ms in sorted(starts.items())]
    )
    repository.finish_reach(window_id, reach.seq)
    return ReachReport(window_id, reach.seq, muted, incidents.resolved, incidents.updated, relearnt)


def requeue_pending(repository: MaintenanceRepository, queue: ReachQueue) -> list[str]:
    """Queue again the reaches asked for more than REACH_TAKEN_AS_LOST_AFTER_SECONDS ago
    and not applied yet; their windows' ids."""
    lost = repository.pending_reaches(
        now_ms() - REACH_TAKEN_AS_LOST_AFTER_SECONDS * 1000, REQUEUE_BATCH
    )
    for window_id in lost:
        queue.enqueue_window_reach(window_id)
    return lost
