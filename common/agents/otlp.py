"""OTLP/HTTP metrics (`POST /v1/metrics`): an `ExportMetricsServiceRequest` as protobuf or
JSON, gzip or not, decoded by opentelemetry-proto's generated classes.

What each point becomes (in AgentSeries, before mapping):
- gauge: its value;
- sum, cumulative and monotonic: a counter (per-second rate, resets handled, `counters`);
  cumulative and not monotonic (an up-down counter): its value;
- sum, delta: its value per second over the point's interval;
- histogram and exponential histogram: `NAME_count` and `NAME_sum` as above (cumulative:
  counters; delta: per second); summary: `NAME_count` and `NAME_sum` as counters.
The resource's `service.name` travels as a label of that name (the mapping's default
service label) and its `host.name` as `instance`, so that two hosts' series stay apart.
Not `service.instance.id`: SDKs make it a random id per process, so every restart would
start new metrics without history; `resource_labels` adds any resource attribute (that one
included) as a label of its own name. Points flagged "no recorded value" and non-finite values are
skipped; points that cannot be read (no time, a delta without an interval) are rejected and
counted in the answer's partial_success.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

from common.agents.compression import gunzip
from common.agents.series import AgentSeries
from common.errors import MalformedRequestError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SERVICE_NAME = "service.name"
NO_RECORDED_VALUE = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


@dataclass
class OtlpMetrics:
    series: list[AgentSeries] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def reject(self, count: int, why: str) -> None:
        self.rejected += count
        if why not in self.errors and len(self.errors) < 10:
            self.errors.append(why)


def media_type(content_type: str | None) -> str:
    kind = (content_type or "").split(";", maxsplit=1)[0].strip().lower()
    if kind not in (PROTOBUF, JSON):
        raise UnsupportedMediaTypeError(
            f"send OTLP metrics as {PROTOBUF} or {JSON} (got {content_type or 'none'})"
        )
    return kind


class UnsupportedMediaTypeError(MalformedRequestError):
    """Neither OTLP encoding (415)."""


def decode(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None,
    max_decoded_bytes: int,
    resource_labels: tuple[str, ...] = (),
) -> OtlpMetrics:
    kind = media_type(content_type)
    encoding = (content_encoding or "").strip().lower()
    if encoding == "gzip":
        body = gunzip(body, max_decoded_bytes)
    elif encoding not in ("", "identity"):
        raise MalformedRequestError(f"Content-Encoding {content_encoding} is not gzip")
    request = ExportMetricsServiceRequest()
    try:
        if kind == PROTOBUF:
            request.ParseFromString(body)
        else:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise MalformedRequestError("the JSON body is not an object")
            json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (DecodeError, json_format.ParseError, ValueError, RecursionError) as exc:
        raise MalformedRequestError(
            f"the body is not an OTLP ExportMetricsServiceRequest in {kind}: {exc}"[:500]
        ) from exc
    metrics = OtlpMetrics()
    for resource_metrics in request.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        base = {key: resource[key] for key in resource_labels if key in resource}
        if SERVICE_NAME in resource:
            base[SERVICE_NAME] = resource[SERVICE_NAME]
        if "host.name" in resource:
            base["instance"] = resource["host.name"]
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                _read_metric(metric, base, metrics)
    return metrics


def encode_response(kind: str, rejected: int, message: str) -> bytes:
    """The success answer, in the request's encoding, with partial_success when anything
    was rejected (empty otherwise, as the spec asks)."""
    response = ExportMetricsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = message
    if kind == PROTOBUF:
        return bytes(response.SerializeToString())
    return json.dumps(json_format.MessageToDict(response)).encode()


def _any_value(value: AnyValue) -> str:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which is None:
        return ""
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which in ("int_value", "double_value"):
        return str(getattr(value, which))
    return json.dumps(json_format.MessageToDict(value), sort_keys=True)


def _attributes(attributes: Iterable[KeyValue]) -> dict[str, str]:
    return {kv.key: _any_value(kv.value) for kv in attributes}


class _Points:
    """A metric's points grouped into series by attributes."""

    def __init__(self, name: str, base: dict[str, str], counter: bool, out: OtlpMetrics):
        self.name, self.base, self.counter, self.out = name, base, counter, out
        self.by_labels: dict[tuple[tuple[str, str], ...], AgentSeries] = {}

    def add(self, attributes: Iterable[KeyValue], time_ms: int, value: float) -> None:
        labels = {**self.base, **_attributes(attributes)}
        key = tuple(sorted(labels.items()))
        series = self.by_labels.get(key)
        if series is None:
            series = self.by_labels[key] = AgentSeries(self.name, labels, self.counter)
        series.timestamps_ms.append(time_ms)
        series.values.append(value)

    def flush(self) -> None:
        self.out.series.extend(self.by_labels.values())


def _point_time(point: Any, metric: str, out: OtlpMetrics) -> int | None:
    if point.flags & NO_RECORDED_VALUE:
        return None
    if not point.time_unix_nano:
        out.reject(1, f"{metric}: a data point without time_unix_nano")
        return None
    return int(point.time_unix_nano // 1_000_000)


def _per_second(point: Any, value: float, metric: str, out: OtlpMetrics) -> float | None:
    """A delta point's value per second over its interval."""
    seconds = float(point.time_unix_nano - point.start_time_unix_nano) / 1e9
    if not point.start_time_unix_nano or seconds <= 0:
        out.reject(1, f"{metric}: a delta point needs start_time_unix_nano before its time")
        return None
    return float(value) / seconds


def _read_metric(metric: Metric, base: dict[str, str], out: OtlpMetrics) -> None:
    which = metric.WhichOneof("data")
    name = metric.name
    if not name:
        out.reject(_count_points(metric), "a metric without a name")
        return
    if which in ("gauge", "sum"):
        data = getattr(metric, which)
        temporality = data.aggregation_temporality if which == "sum" else None
        if which == "sum" and temporality not in (DELTA, CUMULATIVE):
            out.reject(len(data.data_points), f"{name}: a sum without aggregation_temporality")
            return
        counter = which == "sum" and temporality == CUMULATIVE and data.is_monotonic
        points = _Points(name, base, counter, out)
        for point in data.data_points:
            time_ms = _point_time(point, name, out)
            if time_ms is None:
                continue
            value = point.as_double if point.WhichOneof("value") == "as_double" else point.as_int
            if temporality == DELTA:
                value = _per_second(point, value, name, out)
                if value is None:
                    continue
            points.add(point.attributes, time_ms, float(value))
        points.flush()
    elif which in ("histogram", "exponential_histogram", "summary"):
        data = getattr(metric, which)
        delta = which != "summary" and data.aggregation_temporality == DELTA
        if which != "summary" and data.aggregation_temporality not in (DELTA, CUMULATIVE):
            out.reject(len(data.data_points), f"{name}: a histogram without temporality")
            return
        counts = _Points(f"{name}_count", base, not delta, out)
        sums = _Points(f"{name}_sum", base, not delta, out)
        for point in data.data_points:
            time_ms = _point_time(point, name, out)
            if time_ms is None:
                continue
            count: float | None = float(point.count)
            total: float | None = point.sum if which == "summary" or point.HasField("sum") else None
            if delta:
                count = _per_second(point, float(point.count), name, out)
                total = None if total is None else _per_second(point, total, name, out)
            if count is not None:
                counts.add(point.attributes, time_ms, count)
            if total is not None:
                sums.add(point.attributes, time_ms, total)
        counts.flush()
        sums.flush()
    else:
        out.reject(0, f"{name}: no data (gauge, sum, histogram or summary)")


def _count_points(metric: Metric) -> int:
    which = metric.WhichOneof("data")
    return len(getattr(metric, which).data_points) if which else 0
