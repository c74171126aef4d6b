"""Prometheus remote write 1.0: `Content-Encoding: snappy` (block format) around a protobuf
`prometheus.WriteRequest`, decoded by the protobuf runtime from prompb/remote.proto."""

from __future__ import annotations

import math

from google.protobuf.message import DecodeError

from common.agents.compression import snappy_block
from common.agents.mapping import PROMETHEUS_LABEL_NAME, PROMETHEUS_METRIC_NAME, escape
from common.agents.prompb.remote_pb2 import MetricMetadata, TimeSeries, WriteRequest
from common.agents.series import AgentSeries
from common.errors import MalformedRequestError

# Names that are counters by Prometheus' conventions; metadata can say so of others.
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
TYPE_NAMES = {
    MetricMetadata.COUNTER: "counter",
    MetricMetadata.GAUGE: "gauge",
    MetricMetadata.HISTOGRAM: "histogram",
    MetricMetadata.GAUGEHISTOGRAM: "gaugehistogram",
    MetricMetadata.SUMMARY: "summary",
    MetricMetadata.INFO: "info",
    MetricMetadata.STATESET: "stateset",
}


class RemoteWrite:
    """A decoded request: its series (counters not yet told apart) and the metric types its
    metadata states (Prometheus sends metadata in requests of their own, every minute)."""

    def __init__(self, series: list[AgentSeries], types: dict[str, str]):
        self.series = series
        self.types = types


def decode(body: bytes, content_encoding: str | None, max_decoded_bytes: int) -> RemoteWrite:
    encoding = (content_encoding or "").strip().lower()
    if encoding != "snappy":
        raise MalformedRequestError(
            f"remote write bodies are snappy-compressed: send Content-Encoding: snappy "
            f"(got {content_encoding or 'none'})"
        )
    request = WriteRequest()
    try:
        request.ParseFromString(snappy_block(body, max_decoded_bytes))
    except DecodeError as exc:
        raise MalformedRequestError(
            f"the body is not a protobuf prometheus.WriteRequest (remote write 1.0): {exc}"
        ) from exc
    series = [_series(index, ts) for index, ts in enumerate(request.timeseries)]
    types = {
        m.metric_family_name: TYPE_NAMES[m.type]
        for m in request.metadata
        if m.metric_family_name and m.type in TYPE_NAMES
    }
    return RemoteWrite(series, types)


def _series(index: int, ts: TimeSeries) -> AgentSeries:
    labels = {label.name: label.value for label in ts.labels}
    name = labels.pop("__name__", "")
    if not PROMETHEUS_METRIC_NAME.fullmatch(name):
        raise MalformedRequestError(
            f"series {index}: the metric name (label __name__) {escape(name)[:200]!r} is not "
            "a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*); nothing was stored"
        )
    for label in labels:
        if not PROMETHEUS_LABEL_NAME.fullmatch(label):
            raise MalformedRequestError(
                f"series {index} ({name}): the label name {escape(label)[:200]!r} is not a "
                "Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*); nothing was stored"
            )
    if len(labels) + 1 != len(ts.labels):
        raise MalformedRequestError(f"series {index} ({name}): a label name appears twice")
    timestamps: list[int] = []
    values: list[float] = []
    for sample in ts.samples:
        timestamps.append(sample.timestamp)
        values.append(sample.value)
    return AgentSeries(name, labels, False, timestamps, values)


def is_counter(name: str, types: dict[str, str]) -> bool:
    """A counter by its metadata type, else by its name's suffix (histogram and summary
    families' `_count`, `_sum`, `_bucket` are cumulative too)."""
    stated = types.get(name)
    if stated == "counter":
        return True
    if stated is not None and stated not in {"histogram", "summary"}:
        return False  # a gauge (or info, stateset) whatever its name says
    return name.endswith(COUNTER_SUFFIXES)


def finite(value: float) -> bool:
    # Staleness markers are a NaN (0x7ff0000000000002); no non-finite value is a reading.
    return math.isfinite(value)
