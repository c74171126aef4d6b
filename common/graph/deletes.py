"""Deleting what a metric owns in bounded batches: shared by deleting a metric and deleting
a service (each then deletes its own node last, see their repositories)."""

from __future__ import annotations

from functools import partial

from common.graph import queries as q
from common.graph.executors import CypherExecutor
from common.graph.params import WRITE_BATCH, until_short


def delete_metric_children(executor: CypherExecutor, metric_id: str) -> int:
    """Delete every node the metric owns (DELETE_METRIC_CHILDREN), WRITE_BATCH per statement;
    how many were deleted. Linear in what it deletes, and no statement is long: another
    tenant's write waits for one batch at most, never for the whole delete.

    Only for a metric marked `deleting`: nothing adds children to it then, so a batch short
    of WRITE_BATCH was the last of its kind.
    """

    def delete_batch(statement: str) -> int:
        [row] = executor.write(statement, {"metric_id": metric_id, "batch": WRITE_BATCH})
        return int(row["deleted"])

    return sum(until_short(partial(delete_batch, s)) for s in q.DELETE_METRIC_CHILDREN)
