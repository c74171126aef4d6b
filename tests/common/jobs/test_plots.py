"""A job plot's title: the names a person knows, or the id for results stored without them."""

from __future__ import annotations

import io

from PIL import PngImagePlugin

from common.jobs.plots import plot_title, render_result_png
from common.jobs.results import PointColumns, ResultMeta


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


def test_names_with_dollar_signs_are_drawn_as_text() -> None:
    # "$...$" is matplotlib's math: unparsed, "$^^$" made the plot route fail (500).
    columns = PointColumns(
        timestamp_ms=[1_700_000_000_000 + i * 60_000 for i in range(3)],
        reading_id=["a", "b", "c"],
        value=[1.0, 2.0, 1.0],
        expected=[1.0, 1.0, 1.0],
        lower=[0.0, 0.0, 0.0],
        upper=[2.5, 2.5, 2.5],
        score=[0.0, 0.5, 0.0],
        probability=[1.0, 0.5, 1.0],
        is_anomaly=[False, False, False],
    )
    for name in ("price_$^^$", "$\\frac$", "revenue $ ($k)"):
        png = render_result_png(columns, meta(service_name="shop", metric_name=name))
        title = PngImagePlugin.PngImageFile(io.BytesIO(png)).text["Title"]
        assert title == f"shop / {name} — stl, 0 events"


def test_title_of_a_result_stored_without_names_is_the_metric_id() -> None:
    assert plot_title(meta()) == "metric m1"
    assert plot_title(meta(metric_name="cpu")) == "cpu"  # its service deleted meanwhile
