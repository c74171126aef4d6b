"""Check a metric's reading chain against the data model's invariants."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.graph.store import GraphStore


@dataclass
class ChainReport:
    readings: int = 0
    linked: int = 0  # readings reached walking NEXT from the head
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_chain(store: GraphStore, metric_id: str) -> ChainReport:
    """One chain, in (timestamp, id) order, no forks, LATEST_READING on the newest, none lost."""
    report = ChainReport()
    rows = [row for row in store.chain_facts(metric_id) if row["id"] is not None]
    report.readings = len(rows)
    if not rows:
        return report
    latest_ids = {row["latest_id"] for row in rows}
    by_id = {row["id"]: row for row in rows}
    incoming: dict[str, int] = {}
    for row in rows:
        if len(row["next_ids"]) > 1:
            report.problems.append(f"fork: {row['id']} has {len(row['next_ids'])} NEXT links")
        for target in row["next_ids"]:
            incoming[target] = incoming.get(target, 0) + 1
    heads = [row["id"] for row in rows if row["id"] not in incoming]
    if len(heads) != 1:
        report.problems.append(f"{len(heads)} chain heads (want 1)")
        return report
    walked, current = [], heads[0]
    seen: set[str] = set()
    while current is not None and current not in seen:
        seen.add(current)
        walked.append(by_id[current])
        targets = by_id[current]["next_ids"]
        current = targets[0] if targets else None
    report.linked = len(walked)
    if report.linked != report.readings:
        report.problems.append(f"{report.readings - report.linked} readings not on the chain")
    keys = [(row["timestamp"], row["id"]) for row in walked]
    if keys != sorted(keys):
        report.problems.append("chain is not in timestamp order")
    newest = max(rows, key=lambda row: (row["timestamp"], row["id"]))["id"]
    if latest_ids != {newest}:
        report.problems.append(f"LATEST_READING points at {latest_ids}, newest is {newest}")
    return report
