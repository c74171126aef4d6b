"""Check a metric's reading chain against the data model's invariants."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.metrics.models import ChainLink
from common.metrics.repository import ReadingRepository


@dataclass
class ChainReport:
    readings: int = 0
    linked: int = 0  # readings reached walking NEXT from the head
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_chain(readings: ReadingRepository, metric_id: str) -> ChainReport:
    """One chain, in (timestamp, id) order, no forks, LATEST_READING on the newest, none lost."""
    report = ChainReport()
    chain = readings.chain(metric_id)
    links = chain.links
    report.readings = len(links)
    if not links:
        return report
    by_id = {link.id: link for link in links}
    incoming: dict[str, int] = {}
    for link in links:
        if len(link.next_ids) > 1:
            report.problems.append(f"fork: {link.id} has {len(link.next_ids)} NEXT links")
        for target in link.next_ids:
            incoming[target] = incoming.get(target, 0) + 1
    heads = [link.id for link in links if link.id not in incoming]
    if len(heads) != 1:
        report.problems.append(f"{len(heads)} chain heads (want 1)")
        return report
    walked: list[ChainLink] = []
    current: str | None = heads[0]
    seen: set[str] = set()
    while current is not None and current not in seen:
        seen.add(current)
        walked.append(by_id[current])
        targets = by_id[current].next_ids
        current = targets[0] if targets else None
    report.linked = len(walked)
    if report.linked != report.readings:
        report.problems.append(f"{report.readings - report.linked} readings not on the chain")
    keys = [(link.timestamp_ms, link.id) for link in walked]
    if keys != sorted(keys):
        report.problems.append("chain is not in timestamp order")
    newest = max(links, key=lambda link: (link.timestamp_ms, link.id)).id
    if chain.latest_ids != {newest}:
        latest = set(chain.latest_ids)
        report.problems.append(f"LATEST_READING points at {latest}, newest is {newest}")
    return report
