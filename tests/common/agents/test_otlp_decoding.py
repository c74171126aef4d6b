"""What each kind of OTLP point becomes, decoded from protobuf as an exporter sends it."""

from __future__ import annotations

import gzip

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from common.agents.otlp import PROTOBUF, decode
from common.agents.series import AgentSeries
from common.errors import MalformedRequestError, TooLargeError

SECOND = 1_000_000_000
T0 = 1_780_000_000 * SECOND
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
LIMIT = 1 << 20


def request() -> tuple[ExportMetricsServiceRequest, object]:
    export = ExportMetricsServiceRequest()
    resource = export.resource_metrics.add()
    for key, value in (("service.name", "api"), ("host.name", "h1"), ("service.instance.id", "x")):
        attribute = resource.resource.attributes.add()
        attribute.key, attribute.value.string_value = key, value
    return export, resource.scope_metrics.add()


def by_name(series: list[AgentSeries]) -> dict[str, AgentSeries]:
    return {s.name: s for s in series}


def test_kinds_of_points() -> None:
    export, scope = request()
    updown = scope.metrics.add(name="queue.depth")
    updown.sum.aggregation_temporality = CUMULATIVE
    updown.sum.is_monotonic = False
    point = updown.sum.data_points.add(time_unix_nano=T0, as_int=7)
    flag = point.attributes.add()
    flag.key, flag.value.bool_value = "durable", True
    counter = scope.metrics.add(name="requests")
    counter.sum.aggregation_temporality = CUMULATIVE
    counter.sum.is_monotonic = True
    counter.sum.data_points.add(time_unix_nano=T0, as_double=3.5)
    counter.sum.data_points.add(time_unix_nano=T0 + SECOND, as_double=4.5, flags=1)  # no value
    summary = scope.metrics.add(name="rpc")
    summary.summary.data_points.add(time_unix_nano=T0, count=4, sum=2.0)
    exponential = scope.metrics.add(name="size")
    exponential.exponential_histogram.aggregation_temporality = DELTA
    exponential.exponential_histogram.data_points.add(
        start_time_unix_nano=T0, time_unix_nano=T0 + 4 * SECOND, count=8
    )  # no sum: only the count is stored
    decoded = decode(export.SerializeToString(), PROTOBUF, None, LIMIT)
    series = by_name(decoded.series)
    assert set(series) == {"queue.depth", "requests", "rpc_count", "rpc_sum", "size_count"}
    assert series["queue.depth"].labels == {
        "service.name": "api",
        "instance": "h1",
        "durable": "true",
    }
    assert (series["queue.depth"].counter, series["queue.depth"].values) == (False, [7.0])
    assert (series["requests"].counter, series["requests"].values) == (True, [3.5])
    assert series["rpc_count"].counter and series["rpc_sum"].values == [2.0]
    assert (series["size_count"].counter, series["size_count"].values) == (False, [2.0])
    assert series["requests"].timestamps_ms == [T0 // 1_000_000]
    assert decoded.rejected == 0


def test_resource_labels_and_rejections() -> None:
    export, scope = request()
    gauge = scope.metrics.add(name="temp")
    gauge.gauge.data_points.add(time_unix_nano=T0, as_double=1.0)
    gauge.gauge.data_points.add(as_double=2.0)  # no time
    unnamed = scope.metrics.add()
    unnamed.gauge.data_points.add(time_unix_nano=T0, as_double=1.0)
    body = gzip.compress(export.SerializeToString())
    decoded = decode(body, PROTOBUF, "gzip", LIMIT, ("service.instance.id",))
    [temp] = decoded.series
    assert temp.labels["service.instance.id"] == "x"
    assert decoded.rejected == 2
    assert any("time_unix_nano" in e for e in decoded.errors)


def test_encodings_refused() -> None:
    with pytest.raises(MalformedRequestError, match="gzip"):
        decode(b"not gzip", PROTOBUF, "gzip", LIMIT)
    with pytest.raises(MalformedRequestError, match="truncated"):
        decode(gzip.compress(b"x" * 1000)[:20], PROTOBUF, "gzip", LIMIT)
    with pytest.raises(MalformedRequestError, match="not gzip"):
        decode(b"", PROTOBUF, "br", LIMIT)
    with pytest.raises(TooLargeError):
        decode(gzip.compress(b"\x00" * (LIMIT + 1)), PROTOBUF, "gzip", LIMIT)
