"""Anomalies in the graph, each linked to the reading it flags (FLAGS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from common.anomalies import queries as q
from common.anomalies.models import LESSONS_PER_METRIC, Anomaly, Lesson, NewAnomaly, Verdict
from common.epoch import from_epoch_ms, now_ms, optional_moment
from common.graph.executors import CypherExecutor, Row
from common.graph.params import MIN_MS, KeysetPage, batches, keyset_page


def _anomaly(row: Row) -> Anomaly:
    return Anomaly(
        **{
            **row,
            "timestamp": from_epoch_ms(row["timestamp"]),
            "event_start": from_epoch_ms(row["event_start"]),
            "event_end": from_epoch_ms(row["event_end"]),
            "detected_at": from_epoch_ms(row["detected_at"]),
            "feedback_at": optional_moment(row.get("feedback_at")),
        }
    )


class AnomalyRepository:
    def __init__(self, executor: CypherExecutor):
        self.executor = executor

    def save(
        self,
        metric_id: str,
        anomalies: Sequence[NewAnomaly],
        job_id: str | None = None,
        windows_seen: tuple[str, int] | None = None,
    ) -> list[NewAnomaly]:
        """Store one judgement's anomalies of a metric's readings, in bounded batches.

        One anomaly per reading, whoever flags it (see SAVE_ANOMALIES): a reading already
        flagged gains this method and keeps the stronger evidence. Returns the anomalies
        stored, each with the id it is stored under; a reading that does not exist (or a
        metric being deleted) stores nothing. `windows_seen`: (owner id, generation of
        the owner's maintenance windows the anomalies were marked muted by); a batch is
        stored only while the windows are still that generation
        (SAVE_ANOMALIES_UNDER_WINDOWS).
        """
        statement, guard = q.SAVE_ANOMALIES, {}
        if windows_seen is not None:
            statement = q.SAVE_ANOMALIES_UNDER_WINDOWS
            guard = {"owner_id": windows_seen[0], "windows_seq": windows_seen[1]}
        strongest: dict[str, NewAnomaly] = {}
        for anomaly in anomalies:  # one per reading within a call too
            kept = strongest.get(anomaly.reading_id)
            if kept is None or anomaly.score > kept.score:
                strongest[anomaly.reading_id] = anomaly
        stored: list[NewAnomaly] = []
        for batch in batches(list(strongest.values())):
            rows = self.executor.write(
                statement,
                {
                    **guard,
                    "metric_id": metric_id,
                    "min": MIN_MS,
                    "job_id": job_id,
                    "now": now_ms(),
                    "anomalies": [
                        {
                            "id": a.id,
                            "reading_id": a.reading_id,
                            "timestamp": a.timestamp_ms,
                            "value": a.value,
                            "expected": a.expected,
                            "lower": a.lower,
                            "upper": a.upper,
                            "score": a.score,
                            "method": a.method,
                            "event_start": a.event_start_ms,
                            "event_end": a.event_end_ms,
                            "probability": a.probability,
                            "kind": a.kind,
                            "summary": a.summary,
                            "muted": a.muted,
                        }
                        for a in batch
                    ],
                },
            )
            stored_as = {row["reading_id"]: row["id"] for row in rows}
            stored += [
                a if stored_as[a.reading_id] == a.id else replace(a, id=stored_as[a.reading_id])
                for a in batch
                if a.reading_id in stored_as
            ]
        return stored

    def list_page(self, metric_id: str, page: KeysetPage) -> list[Anomaly]:
        """A page of a metric's anomalies in (timestamp, id) order."""
        rows = self.executor.read(q.LIST_ANOMALIES, keyset_page(metric_id, page))
        return [_anomaly(row) for row in rows]

    def get(self, owner_id: str, anomaly_id: str) -> Anomaly | None:
        rows = self.executor.read(q.GET_ANOMALY, {"owner_id": owner_id, "anomaly_id": anomaly_id})
        return _anomaly(rows[0]) if rows else None

    def set_feedback(self, owner_id: str, anomaly_id: str, verdict: Verdict) -> Anomaly | None:
        """Record what a person said of an anomaly (the last verdict counts)."""
        rows = self.executor.write(
            q.SET_ANOMALY_FEEDBACK,
            {
                "owner_id": owner_id,
                "anomaly_id": anomaly_id,
                "verdict": verdict,
                "now": now_ms(),
                "min": MIN_MS,
            },
        )
        return _anomaly(rows[0]) if rows else None

    def clear_feedback(self, owner_id: str, anomaly_id: str) -> Anomaly | None:
        """Withdraw what a person said of an anomaly: as if nobody had said anything."""
        rows = self.executor.write(
            q.SET_ANOMALY_FEEDBACK,
            {"owner_id": owner_id, "anomaly_id": anomaly_id, "verdict": None, "now": None,
             "min": MIN_MS},
        )  # fmt: skip
        return _anomaly(rows[0]) if rows else None

    def lessons(
        self, metric_ids: Sequence[str], limit: int = LESSONS_PER_METRIC
    ) -> dict[str, list[Lesson]]:
        """Per metric, its newest `limit` anomalies with a verdict or in an open incident
        (common.anomalies.lessons), in one read; a metric without any is absent."""
        found: dict[str, list[Lesson]] = {}
        for batch in batches(list(metric_ids)):
            rows = self.executor.read(
                q.METRIC_LESSONS, {"metric_ids": batch, "min": MIN_MS, "limit": limit}
            )
            for row in rows:
                found.setdefault(row["metric_id"], []).append(
                    Lesson(
                        timestamp_ms=row["timestamp"],
                        event_start_ms=row["event_start"],
                        event_end_ms=row["event_end"],
                        kind=row["kind"],
                        value=row["value"],
                        expected=row["expected"],
                        probability=row["probability"],
                        feedback=row["feedback"],
                        in_open_incident=bool(row["open"]),
                    )
                )
        return found
