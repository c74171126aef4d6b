"""One anomaly per reading and one incident per event, whoever judges the readings and in
whatever order (issue 21, "paged twice for one incident"), on each engine: a job then a
scan, a scan then a job, two methods, a resolved incident judged again; and the cap on
what one judgement stores, written in bounded batches."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from common.anomalies.models import NewAnomaly
from common.epoch import to_epoch_ms
from common.graph.params import WRITE_BATCH, KeysetPage
from common.incidents.models import Incident
from common.incidents.recording import RecordedAnomalies, record_anomalies
from common.metrics.models import MetricRef, NewReading
from common.settings import Settings
from common.stores import Repositories
from tests.common.incidents.test_building import Owner

BURST = [0, 1, 2]  # minutes after the owner's t0: one event of three readings


def judge(
    owner: Owner,
    metric: MetricRef,
    minutes: list[float],
    method: str,
    settings: Settings,
    score: float = 4.0,
    job_id: str = "job",
) -> RecordedAnomalies:
    """One judgement (a job or a scan) flagging the readings at `minutes` as one event;
    the readings are stored first if they are not yet (a re-sent id is stored once)."""
    at = [to_epoch_ms(owner.t0 + timedelta(minutes=minute)) for minute in minutes]
    owner.store.readings.append(
        metric.id, [NewReading(f"r{minute}", t, 9.0) for minute, t in zip(minutes, at, strict=True)]
    )
    found = [
        NewAnomaly(
            metric.id, f"r{minute}", timestamp_ms=t, value=9.0, expected=1.0, lower=0.0,
            upper=2.0, score=score, method=method, event_start_ms=at[0], event_end_ms=at[-1],
        )
        for minute, t in zip(minutes, at, strict=True)
    ]  # fmt: skip
    return record_anomalies(owner.store, metric, found, job_id, settings)


def incidents_of(owner: Owner) -> list[Incident]:
    return owner.store.incidents.list_owned(owner.user.id, None, 0, 100)


def anomalies_of(graph: Repositories, metric: MetricRef) -> dict[str, list[str]]:
    """Each stored anomaly's reading, with the methods that flagged it."""
    page = graph.anomalies.list_page(metric.id, KeysetPage(None, None, 10_000))
    assert len({a.reading_id for a in page}) == len(page), "two anomalies for one reading"
    return {a.reading_id: a.methods for a in page}


def test_a_scan_after_a_job_joins_the_jobs_incident(
    graph: Repositories, settings: Settings
) -> None:
    owner = Owner(graph)
    api = owner.metric("api", "cpu")
    job = judge(owner, api, BURST, "rolling", settings)
    assert [(c.opened, c.joined) for c in job.incidents] == [(True, 3)]
    # The scan judges the same readings (and one more of the burst): nothing opens.
    scan = judge(owner, api, [*BURST, 3], "auto-online", settings, job_id="scan")
    assert scan.stored == 4
    assert [(c.incident_id, c.opened, c.joined) for c in scan.incidents] == [
        (job.incidents[0].incident_id, False, 1)
    ]
    [incident] = incidents_of(owner)
    assert incident.members == 4
    assert anomalies_of(graph, api) == {
        "r0": ["rolling", "auto-online"],
        "r1": ["rolling", "auto-online"],
        "r2": ["rolling", "auto-online"],
        "r3": ["auto-online"],
    }


def test_a_job_after_a_scan_joins_the_scans_incident(
    graph: Repositories, settings: Settings
) -> None:
    owner = Owner(graph)
    api = owner.metric("api", "cpu")
    scan = judge(owner, api, BURST, "auto-online", settings, job_id="scan")
    job = judge(owner, api, BURST, "rolling", settings, score=7.0)
    assert [c.opened for c in scan.incidents] == [True] and job.incidents == []
    [incident] = incidents_of(owner)
    assert incident.members == 3 and incident.revision == 1
    stored = graph.anomalies.list_page(api.id, KeysetPage(None, None, 10))
    # The job's evidence is stronger: it is the one kept, under the scan's anomaly ids.
    assert {(a.method, a.job_id, a.score) for a in stored} == {("rolling", "job", 7.0)}
    assert all(a.methods == ["auto-online", "rolling"] for a in stored)


def test_two_methods_on_the_same_readings_make_one_anomaly_each_and_one_incident(
    graph: Repositories, settings: Settings
) -> None:
    owner = Owner(graph)
    api = owner.metric("api", "cpu")
    judge(owner, api, BURST, "rolling", settings)
    assert judge(owner, api, BURST, "stl", settings).incidents == []
    assert judge(owner, api, BURST, "stl", settings).incidents == []  # a re-run: nothing
    assert list(anomalies_of(graph, api).values()) == [["rolling", "stl"]] * 3
    [incident] = incidents_of(owner)
    assert incident.members == 3


def test_a_resolved_incident_judged_again_is_not_opened_again(
    graph: Repositories, settings: Settings
) -> None:
    """The walkthrough: an incident resolved, then the first periodic scan judged the same
    burst, stored a second anomaly per reading and opened a second incident (paged twice)."""
    owner = Owner(graph)
    api = owner.metric("api", "cpu")
    [opened] = judge(owner, api, BURST, "rolling", settings).incidents
    resolved = graph.incidents.resolve(owner.user.id, opened.incident_id, "alice")
    assert resolved is not None and resolved.status == "resolved"
    # The scan flags the burst again and one more reading of it, stamped before the
    # resolve: part of what was resolved. It joins the resolved incident, telling nobody.
    rescan = judge(owner, api, [*BURST, 3], "auto-online", settings, job_id="scan")
    assert rescan.incidents == [] and rescan.stored == 4
    [incident] = incidents_of(owner)
    assert incident.status == "resolved" and incident.members == 4
    assert incident.revision == resolved.revision and incident.last_change == "resolved"
    # The same burst still going after the resolve (a reading stamped after it) is news:
    # it opens a new incident, holding only that reading.
    later = judge(owner, api, [*BURST, 3, 16], "auto-online", settings, job_id="scan2")
    [news] = later.incidents
    assert news.opened and news.joined == 1 and news.incident_id != incident.id
    assert sorted(i.members for i in incidents_of(owner)) == [1, 4]


def test_a_quietly_resolved_incident_judged_again_is_not_opened_again(
    graph: Repositories, settings: Settings
) -> None:
    owner = Owner(graph)
    api = owner.metric("api", "cpu")
    judge(owner, api, BURST, "rolling", settings)
    graph.incidents.resolve_quiet(quiet_for_ms=0)
    assert judge(owner, api, BURST, "auto-online", settings, job_id="scan").incidents == []
    assert judge(owner, api, BURST, "stl", settings, job_id="job2").incidents == []
    [incident] = incidents_of(owner)
    assert incident.status == "resolved" and incident.members == 3


def test_a_job_stores_its_strongest_anomalies_up_to_the_cap(
    graph: Repositories, settings: Settings
) -> None:
    owner = Owner(graph)
    api = owner.metric("api", "cpu")
    capped = settings.model_copy(update={"job_max_anomalies": 5})
    minutes = [m / 10 for m in range(12)]
    at = [to_epoch_ms(owner.t0 + timedelta(minutes=m)) for m in minutes]
    graph.readings.append(
        api.id, [NewReading(f"r{m}", t, 1.0) for m, t in zip(minutes, at, strict=True)]
    )
    scores = [3, 9, 2, 8, 1, 7, 4, 6, 5, 10, 2, 3]
    found = [
        NewAnomaly(
            api.id, f"r{m}", timestamp_ms=t, value=1.0, expected=0.0, lower=0.0, upper=0.5,
            score=float(score), method="rolling", event_start_ms=t, event_end_ms=t,
        )
        for m, t, score in zip(minutes, at, scores, strict=True)
    ]  # fmt: skip
    recorded = record_anomalies(graph, api, found, "job", capped)
    assert (recorded.found, recorded.stored, recorded.dropped) == (12, 5, 7)
    assert recorded.kept_min_score == 6.0
    kept = graph.anomalies.list_page(api.id, KeysetPage(None, None, 100))
    assert sorted(a.score for a in kept) == [6.0, 7.0, 8.0, 9.0, 10.0]
    [incident] = incidents_of(owner)
    assert incident.members == 5


def test_a_judgement_larger_than_a_batch_is_written_in_batches_into_one_incident(
    graph: Repositories, settings: Settings
) -> None:
    """More anomalies than one write statement takes (WRITE_BATCH): every batch of the
    cluster goes to the incident the first one opened."""
    owner = Owner(graph)
    api = owner.metric("api", "cpu")
    count = 2 * WRITE_BATCH + 10
    start = to_epoch_ms(owner.t0)
    graph.readings.append(
        api.id, [NewReading(f"r{i}", start + i * 100, float(i)) for i in range(count)]
    )
    found = [
        NewAnomaly(
            api.id, f"r{i}", timestamp_ms=start + i * 100, value=float(i), expected=0.0,
            lower=0.0, upper=0.5, score=2.0, method="rolling", event_start_ms=start,
            event_end_ms=start + (count - 1) * 100,
        )
        for i in range(count)
    ]  # fmt: skip
    unlimited = settings.model_copy(update={"job_max_anomalies": count})
    recorded = record_anomalies(graph, api, found, "job", unlimited)
    assert recorded.stored == count and recorded.dropped == 0
    assert [(c.opened, c.joined) for c in recorded.incidents] == [(True, count)]
    [incident] = incidents_of(owner)
    assert incident.members == count
    # A re-run of the same judgement changes nothing.
    again = record_anomalies(graph, api, [replace(a) for a in found], "job", unlimited)
    assert again.incidents == [] and incidents_of(owner)[0].revision == incident.revision


def test_another_owners_incident_is_neither_read_nor_changed(
    graph: Repositories, settings: Settings
) -> None:
    """GET, acknowledge and resolve find the incident by its id and then check it is the
    owner's (never by walking all of the owner's incidents): another owner's id finds
    nothing and changes nothing; nor does a join of theirs land in it."""
    alice, bob = Owner(graph), Owner(graph)
    [opened] = judge(alice, alice.metric("api", "cpu"), BURST, "rolling", settings).incidents
    before = graph.incidents.get(alice.user.id, opened.incident_id)
    assert before is not None
    assert graph.incidents.get(bob.user.id, opened.incident_id) is None
    assert graph.incidents.acknowledge(bob.user.id, opened.incident_id) is None
    assert graph.incidents.resolve(bob.user.id, opened.incident_id, "bob") is None
    # Bob's burst at the same minutes on a metric named alike: an incident of his own.
    [his] = judge(bob, bob.metric("api", "cpu"), BURST, "rolling", settings).incidents
    assert his.opened and his.incident_id != opened.incident_id
    assert graph.incidents.get(alice.user.id, opened.incident_id) == before
