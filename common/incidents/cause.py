"""Rank an incident's metrics by how likely each is the cause, with reasons a person reads.

Pure: members and dependency edges in, ranked causes out. The order:
 0. a metric whose every anomaly here a person marked a false positive comes last;
 1. upstream first: a metric whose service depends on no other anomalous service of the
    incident comes before one whose service does (that one is more likely a victim); among
    those, the one more anomalous services depend on comes first;
 2. earlier onset (the first anomalous reading);
 3. strength (the peak score; 1 is the edge of the band).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from common.epoch import to_epoch_ms
from common.incidents.models import IncidentMember, MetricActivity
from common.services.models import DependencyEdges


class ProbableCause(BaseModel):
    rank: int = Field(description="1 is the most probable cause")
    metric_id: str
    metric: str = Field(description="service/metric")
    service_id: str | None
    onset_at: datetime = Field(description="the metric's first anomalous reading here")
    peak_score: float = Field(description="the highest score (1 is the edge of the band)")
    anomalies: int = Field(description="anomalous readings of the metric in the incident")
    upstream_of: list[str] = Field(
        description="anomalous services of the incident that depend on this metric's service"
    )
    depends_on_anomalous: list[str] = Field(
        description="anomalous services of the incident this metric's service depends on"
    )
    reasons: list[str] = Field(description="why it ranks where it does, in words and numbers")


def metric_activity(members: Iterable[IncidentMember]) -> list[MetricActivity]:
    """Members grouped by metric: onset, peak score and count of each."""
    grouped: dict[str, list[IncidentMember]] = {}
    for member in members:
        grouped.setdefault(member.metric_id, []).append(member)
    activity = []
    for metric_id, group in grouped.items():
        first = group[0]
        activity.append(
            MetricActivity.named(
                metric_id,
                first.metric_name,
                first.service_id,
                first.service_name,
                onset=min(m.timestamp for m in group),
                peak_score=max(m.score for m in group),
                anomalies=len(group),
                dismissed=all(m.feedback == "false_positive" for m in group),
            )
        )
    return activity


def dependency_hops(edges: DependencyEdges, max_hops: int) -> dict[tuple[str, str], int]:
    """Shortest DEPENDS_ON distance (a depends on b, possibly through others) up to max_hops."""
    depends_on: dict[str, list[str]] = {}
    for dependent, dependency in edges.edges:
        depends_on.setdefault(dependent, []).append(dependency)
    hops: dict[tuple[str, str], int] = {}
    for origin in depends_on:
        queue = deque([(origin, 0)])
        seen = {origin}
        while queue:
            service, distance = queue.popleft()
            if distance == max_hops:
                continue
            for dependency in depends_on.get(service, []):
                if dependency not in seen:
                    seen.add(dependency)
                    hops[(origin, dependency)] = distance + 1
                    queue.append((dependency, distance + 1))
    return hops


def duration_words(milliseconds: int) -> str:
    seconds = round(abs(milliseconds) / 1000)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {seconds} s" if seconds else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def _hops_words(hops: int) -> str:
    return "directly" if hops == 1 else f"through {hops} hops"


def rank_causes(
    members: Sequence[IncidentMember], edges: DependencyEdges, max_hops: int
) -> list[ProbableCause]:
    return rank_activity(metric_activity(members), edges, max_hops)


def rank_activity(
    activity: Sequence[MetricActivity], edges: DependencyEdges, max_hops: int
) -> list[ProbableCause]:
    """The metrics of an incident (each one's part in it) ranked, with their reasons."""
    hops = dependency_hops(edges, max_hops)
    names = {a.service_id: a.service_name for a in activity if a.service_id is not None}
    anomalous_services = set(names)

    def upstream_of(a: MetricActivity) -> list[tuple[str, int]]:
        """(dependent service, hops) for the anomalous services depending on a's service."""
        own = a.service_id
        if own is None:
            return []
        return sorted((s, hops[(s, own)]) for s in anomalous_services if (s, own) in hops)

    def depends_on(a: MetricActivity) -> list[tuple[str, int]]:
        """(dependency, hops) for the anomalous services a's service depends on."""
        own = a.service_id
        if own is None:
            return []
        return sorted((s, hops[(own, s)]) for s in anomalous_services if (own, s) in hops)

    ranked = sorted(
        activity,
        key=lambda a: (
            a.dismissed,
            len(depends_on(a)),
            -len(upstream_of(a)),
            a.onset,
            -a.peak_score,
            a.label,
        ),
    )
    causes = []
    for rank, current in enumerate(ranked, start=1):
        ups, downs = upstream_of(current), depends_on(current)
        reasons = _reasons(current, activity, ups, downs, names)
        causes.append(
            ProbableCause(
                rank=rank,
                metric_id=current.metric_id,
                metric=current.label,
                service_id=current.service_id,
                onset_at=current.onset,
                peak_score=current.peak_score,
                anomalies=current.anomalies,
                upstream_of=[names[s] for s, _ in ups],
                depends_on_anomalous=[names[s] for s, _ in downs],
                reasons=reasons,
            )
        )
    return causes


def _reasons(
    current: MetricActivity,
    activity: Sequence[MetricActivity],
    ups: list[tuple[str, int]],
    downs: list[tuple[str, int]],
    names: dict[str, str],
) -> list[str]:
    reasons = []
    others = [a for a in activity if a.metric_id != current.metric_id]
    if others:
        # Compared with the earliest other metric: "4 min before" or "2 min after".
        nearest = min(others, key=lambda a: (a.onset, a.label))
        lead_ms = to_epoch_ms(nearest.onset) - to_epoch_ms(current.onset)
        if lead_ms > 0:
            reasons.append(
                f"{current.label} started {duration_words(lead_ms)} before {nearest.label}"
            )
        elif lead_ms < 0:
            reasons.append(
                f"{current.label} started {duration_words(lead_ms)} after {nearest.label}"
            )
        else:
            reasons.append(f"{current.label} started at the same time as {nearest.label}")
    else:
        reasons.append(f"{current.label} is the only metric in the incident")
    for service, hops in ups:
        reasons.append(f"{names[service]} depends on {current.service_name} ({_hops_words(hops)})")
    for service, hops in downs:
        reasons.append(
            f"{current.service_name} depends on {names[service]} ({_hops_words(hops)}), "
            "which is anomalous too"
        )
    plural = "s" if current.anomalies != 1 else ""
    reasons.append(
        f"peak score {current.peak_score:.1f} over {current.anomalies} anomalous reading{plural}"
    )
    if current.dismissed:
        reasons.append("ranked last: every anomaly of it was marked a false positive")
    return reasons
