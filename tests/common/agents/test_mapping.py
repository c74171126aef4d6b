"""The label → (service, metric) mapping, and the names it writes."""

from __future__ import annotations

from common.agents.mapping import (
    OTLP_MAPPING,
    REMOTE_WRITE_MAPPING,
    MappingOptions,
    canonical_name,
    escape,
    map_series,
)
from common.agents.series import AgentSeries


def series(name: str, labels: dict[str, str], *values: float) -> AgentSeries:
    return AgentSeries(
        name, labels, False, [1000 * (i + 1) for i in range(len(values))], list(values)
    )


def test_service_from_job_metric_with_other_labels_sorted() -> None:
    cpu = series("node_cpu_seconds_total", {"mode": "idle", "job": "node", "cpu": "0"}, 1.0)
    mapped = map_series([cpu], REMOTE_WRITE_MAPPING)
    assert list(mapped.series) == [("node", 'node_cpu_seconds_total{cpu="0",mode="idle"}')]
    assert mapped.series[("node", 'node_cpu_seconds_total{cpu="0",mode="idle"}')].labels == {
        "cpu": "0",
        "mode": "idle",
    }


def test_service_label_order_then_default() -> None:
    both = series("up", {"service": "api", "service_name": "other"}, 1.0)
    neither = series("up", {"instance": "a:9100"}, 1.0)
    mapped = map_series([both, neither], REMOTE_WRITE_MAPPING)
    assert set(mapped.series) == {
        ("api", 'up{service_name="other"}'),
        ("prometheus", 'up{instance="a:9100"}'),
    }


def test_options_from_the_query_force_a_service_and_drop_labels() -> None:
    options = MappingOptions.parse(REMOTE_WRITE_MAPPING, None, "fleet", "instance, cpu")
    cpu = series("node_load1", {"job": "node", "instance": "a:9100"}, 1.0)
    mapped = map_series([cpu], options)
    # A forced service keeps the job label in the name: it no longer names the service.
    assert list(mapped.series) == [("fleet", 'node_load1{job="node"}')]
    custom = MappingOptions.parse(REMOTE_WRITE_MAPPING, "team", None, None)
    assert custom.service_labels == ("team",)


def test_dropped_labels_merge_series() -> None:
    options = MappingOptions.parse(REMOTE_WRITE_MAPPING, None, None, "instance")
    a = series("node_load1", {"job": "node", "instance": "a"}, 1.0)
    b = AgentSeries("node_load1", {"job": "node", "instance": "b"}, False, [5000], [2.0])
    mapped = map_series([a, b], options)
    assert mapped.series[("node", "node_load1")].values == [1.0, 2.0]


def test_label_values_escaped_as_prometheus_prints_them() -> None:
    name = canonical_name("m", {"path": 'a"b\\c\nd', "tab": "x\ty"})
    assert name == 'm{path="a\\"b\\\\c\\nd",tab="x\\u0009y"}'
    assert escape("plain") == "plain"


def test_otlp_keys_with_dots_are_quoted_and_service_from_resource() -> None:
    point = series("http.server.duration", {"service.name": "shop", "http.method": "GET"}, 1.0)
    mapped = map_series([point], OTLP_MAPPING)
    assert list(mapped.series) == [("shop", 'http.server.duration{"http.method"="GET"}')]
    anonymous = series("queue.size", {}, 1.0)
    assert list(map_series([anonymous], OTLP_MAPPING).series) == [("unknown_service", "queue.size")]


def test_names_over_the_limit_are_refused_with_the_way_out() -> None:
    long = series("m", {"job": "j", "path": "x" * 120}, 1.0, 2.0)
    service_with_newline = series("m", {"job": "a\nb"}, 1.0)
    mapped = map_series([long, service_with_newline], REMOTE_WRITE_MAPPING)
    assert not mapped.series
    assert [r.samples for r in mapped.refused] == [2, 1]
    assert "drop_labels" in mapped.refused[0].why
    assert "control characters" in mapped.refused[1].why


def test_empty_label_values_are_absent_labels() -> None:
    mapped = map_series([series("up", {"job": "j", "zone": ""}, 1.0)], REMOTE_WRITE_MAPPING)
    assert list(mapped.series) == [("j", "up")]
