"""Probable cause ranking on small service graphs whose true cause is known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from common.incidents.cause import dependency_hops, duration_words, rank_causes
from common.incidents.models import IncidentMember
from common.services.models import DependencyEdges

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def member(service: str, metric: str, minute: float, score: float) -> IncidentMember:
    at = T0 + timedelta(minutes=minute)
    return IncidentMember(
        id=f"{service}-{metric}-{minute}",
        metric_id=f"{service}/{metric}",
        metric_name=metric,
        service_id=service,
        service_name=service,
        timestamp=at,
        value=score,
        expected=0.0,
        score=score,
        method="rolling",
        event_start=at,
        event_end=at,
    )


def edges(*pairs: tuple[str, str]) -> DependencyEdges:
    """(dependent, dependency) pairs: ("checkout", "payments") = checkout depends on payments."""
    return DependencyEdges(frozenset(pairs))


def test_upstream_metric_that_started_first_ranks_first_with_reasons() -> None:
    members = [
        member("checkout", "latency", 4, 9.0),
        member("checkout", "latency", 5, 12.0),
        member("payments", "error_rate", 0, 5.0),
        member("payments", "error_rate", 1, 6.0),
    ]
    causes = rank_causes(members, edges(("checkout", "payments")), max_hops=3)
    assert [c.metric for c in causes] == ["payments/error_rate", "checkout/latency"]
    top = causes[0]
    assert top.upstream_of == ["checkout"] and top.depends_on_anomalous == []
    assert top.reasons[:2] == [
        "payments/error_rate started 4 min before checkout/latency",
        "checkout depends on payments (directly)",
    ]
    assert top.peak_score == 6.0 and top.anomalies == 2
    assert causes[1].depends_on_anomalous == ["payments"]
    assert "checkout/latency started 4 min after payments/error_rate" in causes[1].reasons


def test_upstream_beats_an_earlier_but_dependent_metric() -> None:
    # The frontend noticed first (its latency crossed the band sooner), but it depends on
    # the database, two hops away: the database is the probable cause.
    members = [
        member("frontend", "latency", 0, 4.0),
        member("api", "latency", 1, 4.0),
        member("db", "query_time", 2, 3.0),
    ]
    graph = edges(("frontend", "api"), ("api", "db"))
    causes = rank_causes(members, graph, max_hops=3)
    assert [c.metric for c in causes] == ["db/query_time", "api/latency", "frontend/latency"]
    assert "frontend depends on db (through 2 hops)" in causes[0].reasons


def test_same_service_ranks_by_onset_then_strength() -> None:
    members = [
        member("api", "cpu", 3, 50.0),
        member("api", "errors", 1, 2.0),
        member("api", "latency", 1, 8.0),
    ]
    causes = rank_causes(members, edges(), max_hops=3)
    assert [c.metric for c in causes] == ["api/latency", "api/errors", "api/cpu"]


def test_cycle_falls_back_to_onset_and_traversal_is_bounded() -> None:
    members = [member("a", "m", 5, 3.0), member("b", "m", 0, 3.0)]
    ring = edges(("a", "b"), ("b", "a"))
    causes = rank_causes(members, ring, max_hops=3)
    assert [c.metric for c in causes] == ["b/m", "a/m"]
    long_chain = edges(*[(f"s{i}", f"s{i + 1}") for i in range(10)])
    hops = dependency_hops(long_chain, max_hops=3)
    assert hops[("s0", "s3")] == 3 and ("s0", "s4") not in hops


def test_beyond_max_hops_is_not_upstream() -> None:
    members = [member("web", "latency", 0, 5.0), member("db", "load", 3, 5.0)]
    chain = edges(("web", "a"), ("a", "b"), ("b", "db"))
    assert rank_causes(members, chain, max_hops=3)[0].metric == "db/load"
    assert rank_causes(members, chain, max_hops=2)[0].metric == "web/latency"


def test_metric_marked_false_positive_ranks_last() -> None:
    upstream = member("payments", "error_rate", 0, 9.0)
    upstream.feedback = "false_positive"
    members = [upstream, member("checkout", "latency", 4, 5.0)]
    causes = rank_causes(members, edges(("checkout", "payments")), max_hops=3)
    assert [c.metric for c in causes] == ["checkout/latency", "payments/error_rate"]
    assert causes[1].reasons[-1] == "ranked last: every anomaly of it was marked a false positive"


def test_durations_read_naturally() -> None:
    assert duration_words(45_000) == "45 s"
    assert duration_words(240_000) == "4 min"
    assert duration_words(-270_000) == "4 min 30 s"
    assert duration_words(7_500_000) == "2 h 5 min"
