"""A job plot's title: the names a person knows, or the id for results stored without them."""

from __future__ import annotations

from common.jobs.plots import plot_title
from common.jobs.results import ResultMeta


def meta(**names: str) -> ResultMeta:
    return ResultMeta(
        job_id="j1",
        metric_id="m1",
        method="stl",
        method_params={},
        total=0,
        flagged=0,
        chunk_points=1000,
        events=[],
        **names,
    )


def test_title_names_the_service_and_the_metric() -> None:
    assert plot_title(meta(service_name="checkout", metric_name="cpu")) == "checkout / cpu"


def test_title_of_a_result_stored_without_names_is_the_metric_id() -> None:
    assert plot_title(meta()) == "metric m1"
    assert plot_title(meta(metric_name="cpu")) == "cpu"  # its service deleted meanwhile
