"""Maintenance windows in the graph: (:User)-[:HAS_MAINTENANCE_WINDOW]->(:MaintenanceWindow)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time
from typing import Any

from common.epoch import from_epoch_ms, now_ms, optional_moment
from common.errors import ConflictError
from common.graph.executors import CypherExecutor, Row, deleted_any
from common.graph.params import WRITE_BATCH, new_node
from common.maintenance import queries as q
from common.maintenance.models import (
    MaintenanceWindow,
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
            {"owner_id": owner_id, "window_id": window_id, "now": now_ms(), **_spec_params(spec)},
        )
        return _window(rows[0]) if rows else None

    def delete(self, owner_id: str, window_id: str) -> bool:
        rows = self.executor.write(q.DELETE_WINDOW, {"owner_id": owner_id, "window_id": window_id})
        return deleted_any(rows)

    def relearn(self, owner_id: str, targets: Sequence[RelearnTarget]) -> int:
        """Mark the judged metrics each target covers for a rebuild from its `from_ms`
        (RELEARN_UNDER_WINDOWS), WRITE_BATCH metrics a statement; how many were marked."""
        if not targets:
            return 0
        params = [
            {"service_id": t.service_id, "metric_id": t.metric_id, "from": t.from_ms}
            for t in targets
        ]
        marked, after = 0, ""
        while True:
            [row] = self.executor.write(
                q.RELEARN_UNDER_WINDOWS,
                {"owner_id": owner_id, "targets": params, "after": after, "batch": WRITE_BATCH},
            )
            marked += int(row["marked"])
            if row["marked"] < WRITE_BATCH:
                return marked
            after = str(row["last"])

    def mute(
        self,
        owner_id: str,
        service_id: str | None,
        metric_id: str | None,
        spans: Sequence[tuple[int, int]],
    ) -> int:
        """Mute the anomalies already stored in `spans` ([start, end) epoch ms) of the
        metrics the target covers (MUTE_IN_SPANS), WRITE_BATCH a statement; how many were
        muted."""
        if not spans:
            return 0
        params = {
            "owner_id": owner_id,
            "service_id": service_id,
            "metric_id": metric_id,
            "starts": [low for low, _ in spans],
            "ends": [high for _, high in spans],
            "from": min(low for low, _ in spans),
            "to": max(high for _, high in spans),
            "batch": WRITE_BATCH,
        }
        muted = 0
        while True:
            rows = self.executor.write(q.MUTE_IN_SPANS, params)
            batch = int(rows[0]["muted"]) if rows else 0
            muted += batch
            if batch < WRITE_BATCH:
                return muted

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
