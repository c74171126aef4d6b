"""Which maintenance windows apply to each metric of a batch, worked out once for the
metrics that share them (an owner may have 1,000 windows): the same as window by window."""

from __future__ import annotations

from common.maintenance.service import applies, schedules
from common.scans.batch import BatchLessons
from tests.common.maintenance.test_windows import window


def test_the_windows_applying_to_each_metric_are_its_own_its_services_and_all() -> None:
    every = window(start="2026-03-01T00:00", end="2026-03-02T00:00", window_id="all")
    owned = [
        every,
        every.model_copy(update={"id": "api", "service_id": "api"}),
        every.model_copy(update={"id": "cpu", "metric_id": "cpu"}),
        every.model_copy(update={"id": "db", "service_id": "db"}),
    ]
    batch = BatchLessons({}, {"owner": owned, "other": [every.model_copy(update={"id": "theirs"})]})
    metrics = [("api", "cpu"), ("api", "mem"), ("api", "disk"), ("db", "cpu"), ("web", "x")]
    for service_id, metric_id in metrics * 2:  # the second time from what the first kept
        windows, whens = batch.applying_to("owner", service_id, metric_id)
        expected = [w for w in owned if applies(w, metric_id, service_id)]
        assert windows == expected, (service_id, metric_id)
        assert whens == schedules(expected)
    assert [w.id for w in batch.applying_to("owner", "api", "cpu")[0]] == ["all", "api", "cpu"]
    assert [w.id for w in batch.applying_to("owner", "api", "mem")[0]] == ["all", "api"]
    assert [w.id for w in batch.applying_to("other", "api", "cpu")[0]] == ["theirs"]
    assert batch.applying_to("nobody", "api", "cpu") == ([], ())
