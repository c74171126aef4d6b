"""Maintenance windows in the graph: (:User)-[:HAS_MAINTENANCE_WINDOW]->(:MaintenanceWindow)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from functools import partial
from typing import Any

from common.epoch import from_epoch_ms, now_ms, optional_moment
from common.errors import ConflictError
from common.graph.executors import CypherExecutor, Row, deleted_any
from common.graph.params import (
    MIN_MS,
    WRITE_BATCH,
    batches,
    new_node,
    until_short,
    until_short_in_halves,
)
from common.maintenance import queries as q
from common.maintenance.models import (
    MaintenanceWindow,
    MutedIncidents,
    PendingReach,
    RelearnTarget,
    WeeklySchedule,
    WindowSpec,
)


def _window(row: Row) -> MaintenanceWindow:
    weekly = None
    if row["weekly_days"]:
        weekly = WeeklySchedule(
            days=row["weekly_days"].split(","),
            start_time=time.fromisoformat(row["weekly_start"]),
            end_time=time.fromisoformat(row["weekly_end"]),
            time_zone=row["time_zone"],
        )
    return MaintenanceWindow(
        id=row["id"],
        service_id=row["service_id"],
        metric_id=row["metric_id"],
        start=optional_moment(row["starts_at"]),
        end=optional_moment(row["ends_at"]),
        weekly=weekly,
        reason=row["reason"],
        created_at=from_epoch_ms(row["created_at"]),
        updated_at=from_epoch_ms(row["updated_at"]),
        reach_pending=bool(row["reach_pending"]),
    )


def _relearn_entry(entry: str) -> RelearnTarget:
    """A reach_relearn entry, "<generation>|<metric|service|all>|<id>|<from>", as a target."""
    _, kind, target_id, from_ms = entry.split("|")
    return RelearnTarget(
        service_id=target_id if kind == "service" else None,
        metric_id=target_id if kind == "metric" else None,
        from_ms=int(from_ms),
    )


def _spec_params(spec: WindowSpec) -> dict[str, Any]:
    weekly = spec.weekly
    return {
        "service_id": spec.service_id,
        "metric_id": spec.metric_id,
        "starts_at": spec.start_ms,
        "ends_at": spec.end_ms,
        "weekly_days": None if weekly is None else ",".join(weekly.days),
        "weekly_start": None if weekly is None else weekly.start_time.strftime("%H:%M"),
        "weekly_end": None if weekly is None else weekly.end_time.strftime("%H:%M"),
        "time_zone": None if weekly is None else weekly.time_zone,
        "reason": spec.reason,
    }


class MaintenanceRepository:
    def __init__(self, executor: CypherExecutor):
        self.executor = executor

    def target_owned(self, owner_id: str, service_id: str | None, metric_id: str | None) -> bool:
        """Whether the service and the metric a window names (None: none) are the owner's."""
        rows = self.executor.read(
            q.TARGET_OWNED,
            {"owner_id": owner_id, "service_id": service_id, "metric_id": metric_id},
        )
        return bool(rows and rows[0]["owned"])

    def create(self, owner_id: str, spec: WindowSpec, max_windows: int) -> MaintenanceWindow:
        params = new_node(owner_id, max=max_windows, **_spec_params(spec))
        rows = self.executor.write(q.CREATE_WINDOW, params)
        if not rows:
            raise ConflictError(
                f"you have {max_windows} maintenance windows (MAINTENANCE_WINDOWS_MAX): "
                "delete the ones that are over before adding another"
            )
        return _window(rows[0])

    def get(self, owner_id: str, window_id: str) -> MaintenanceWindow | None:
        rows = self.executor.read(q.GET_WINDOW, {"owner_id": owner_id, "window_id": window_id})
        return _window(rows[0]) if rows else None

    def update(self, owner_id: str, window_id: str, spec: WindowSpec) -> MaintenanceWindow | None:
        rows = self.executor.write(
            q.UPDATE_WINDOW,
            {
                "owner_id": owner_id,
                "window_id": window_id,
                "now": now_ms(),
                "min": MIN_MS,
                **_spec_params(spec),
            },
        )
        return _window(rows[0]) if rows else None

    def delete(self, owner_id: str, window_id: str) -> bool:
        rows = self.executor.write(
            q.DELETE_WINDOW,
            {"owner_id": owner_id, "window_id": window_id, "now": now_ms(), "min": MIN_MS},
        )
        return deleted_any(rows)

    def reach_of(self, window_id: str) -> PendingReach | None:
        """The window (or the tombstone of a deleted one) with what its reach into the
        past has left to do; None: no such window, or its tombstone is gone (all done)."""
        rows = self.executor.read(q.REACH_OF_WINDOW, {"window_id": window_id})
        if not rows:
            return None
        row = rows[0]
        return PendingReach(
            owner_id=row["owner_id"],
            window=_window(row),
            deleted=bool(row["deleted"]),
            seq=int(row["reach_seq"]),
            done=int(row["reach_done"]),
            covered_before=[_relearn_entry(entry) for entry in row["relearn"]],
        )

    def covered_metrics(
        self, owner_id: str, service_id: str | None, metric_id: str | None
    ) -> list[tuple[str, int | None]]:
        """The owner's metrics a window's target covers, in id order, each with the
        newest reading sweeps judged (None: never judged). One read."""
        rows = self.executor.read(
            q.COVERED_METRICS,
            {"owner_id": owner_id, "service_id": service_id, "metric_id": metric_id},
        )
        return [(row["id"], row["judged_through"]) for row in rows]

    def relearn(self, marks: Sequence[tuple[str, int, bool]]) -> int:
        """Mark these metrics (id, epoch ms, held by a sweep's batch now) for a rebuild at
        the next sweep (RELEARN_METRICS: those judged at or after it, and those held),
        WRITE_BATCH a statement; how many were marked."""
        marked = 0
        for batch in batches(marks, WRITE_BATCH):
            [row] = self.executor.write(
                q.RELEARN_METRICS,
                {
                    "marks": [
                        {"id": metric_id, "from": from_ms, "held": held}
                        for metric_id, from_ms, held in batch
                    ]
                },
            )
            marked += int(row["marked"])
        return marked

    def mute(
        self,
        owner_id: str,
        window_id: str,
        metric_ids: Sequence[str],
        spans: Sequence[tuple[int, int]],
    ) -> int:
        """Mute the anomalies already stored in `spans` ([start, end) epoch ms, in time
        order) of these metrics of the owner (MUTE_IN_SPANS): WRITE_BATCH metrics and at
        most WRITE_BATCH anomalies a statement, over a slice of the spans' time halved
        where a statement finds a full batch (until_short_in_halves); how many were muted.
        The open incidents they leave are flagged with the window, for settle_muted."""
        if not spans or not metric_ids:
            return 0

        def mute_slice(chunk: Sequence[str], low: int, high: int) -> int:
            inside = [(max(s, low), min(e, high)) for s, e in spans if s < high and e > low]
            if not inside:  # a slice between two spans of a weekly window
                return 0
            rows = self.executor.write(
                q.MUTE_IN_SPANS,
                {
                    "owner_id": owner_id,
                    "window_id": window_id,
                    "metric_ids": list(chunk),
                    "starts": [s for s, _ in inside],
                    "ends": [e for _, e in inside],
                    "from": min(s for s, _ in inside),
                    "to": max(e for _, e in inside),
                    "batch": WRITE_BATCH,
                    "now": now_ms(),
                },
            )
            return int(rows[0]["muted"]) if rows else 0

        low, high = min(s for s, _ in spans), max(e for _, e in spans)
        return sum(
            until_short_in_halves(partial(mute_slice, chunk), low, high, WRITE_BATCH)
            for chunk in batches(metric_ids, WRITE_BATCH)
        )

    def settle_muted(self, owner_id: str, window_id: str) -> MutedIncidents:
        """Tell of the open incidents the window's mute took members from, once each
        (RESOLVE_OR_UPDATE_MUTED_INCIDENTS, WRITE_BATCH incidents a statement): those left
        with none resolved by 'maintenance', the others updated."""
        settled = MutedIncidents(resolved=[], updated=[])

        def settle_a_batch() -> int:
            rows = self.executor.write(
                q.RESOLVE_OR_UPDATE_MUTED_INCIDENTS,
                {"owner_id": owner_id, "window_id": window_id, "now": now_ms(),
                 "batch": WRITE_BATCH},
            )  # fmt: skip
            for row in rows:
                if row["was_open"]:
                    (settled.resolved if row["emptied"] else settled.updated).append(row["id"])
            return len(rows)

        until_short(settle_a_batch, WRITE_BATCH)
        return settled

    def finish_reach(self, window_id: str, seq: int) -> None:
        """Record generation `seq` of the window's reach as applied (FINISH_REACH)."""
        self.executor.write(q.FINISH_REACH, {"window_id": window_id, "seq": seq})

    def pending_reaches(self, cutoff_ms: int, limit: int) -> list[str]:
        """Windows whose reach was asked for before `cutoff_ms` and is not applied yet,
        each asked for again now (PENDING_REACHES)."""
        rows = self.executor.write(
            q.PENDING_REACHES, {"cutoff": cutoff_ms, "now": now_ms(), "limit": limit}
        )
        return [row["id"] for row in rows]

    def windows_seq(self, owner_id: str) -> int:
        """The generation of the owner's windows (bumped by every change of one)."""
        rows = self.executor.read(q.WINDOWS_SEQ, {"owner_id": owner_id})
        return int(rows[0]["windows_seq"]) if rows else 0

    def list_owned(self, owner_id: str) -> list[MaintenanceWindow]:
        return [_window(r) for r in self.executor.read(q.LIST_WINDOWS, {"owner_id": owner_id})]

    def of_metric(
        self, owner_id: str, service_id: str, metric_id: str, start_ms: int, end_ms: int
    ) -> list[MaintenanceWindow]:
        """The windows that apply to a metric and may cover some of [start_ms, end_ms)."""
        rows = self.executor.read(
            q.WINDOWS_OF_METRIC,
            {
                "owner_id": owner_id,
                "service_id": service_id,
                "metric_id": metric_id,
                "start": start_ms,
                "end": end_ms,
            },
        )
        return [_window(row) for row in rows]

    def of_owners(self, owner_ids: Sequence[str]) -> dict[str, list[MaintenanceWindow]]:
        """Every window of these owners, in one read (a sweep's batch)."""
        found: dict[str, list[MaintenanceWindow]] = {}
        if owner_ids:
            rows = self.executor.read(q.WINDOWS_OF_OWNERS, {"owner_ids": list(owner_ids)})
            for row in rows:
                found.setdefault(row["owner_id"], []).append(_window(row))
        return found
