"""OpenTelemetry's own Python SDK exporting to a running Neonomaly over OTLP/HTTP, with its
protobuf exporter and its JSON one: a gauge and a counter arrive as metrics with readings."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.json.http.metric_exporter import (
    OTLPMetricExporter as JsonExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as ProtobufExporter,
)
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from common.users.models import User
from tests.agents_support import bearer, metrics_of, readings_of
from tests.support import AppServer

EXPORTERS: dict[str, Callable[..., MetricExporter]] = {
    "protobuf": ProtobufExporter,
    # What the Collector's otlphttp exporter sends by default: protobuf, gzipped.
    "protobuf-gzip": lambda **kwargs: ProtobufExporter(compression=Compression.Gzip, **kwargs),
    "json": JsonExporter,
}


@pytest.mark.parametrize("encoding", list(EXPORTERS))
def test_sdk_gauge_and_counter_arrive(
    app_server: AppServer, make_user: Callable[..., tuple[User, str]], encoding: str
) -> None:
    _, key = make_user("otel")
    exporter = EXPORTERS[encoding](
        endpoint=f"{app_server.base_url}/v1/metrics", headers=bearer(key), timeout=30
    )
    # Exports happen when flushed below, not on a timer.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": f"checkout-{encoding}", "host.name": "web-1"})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("neonomaly.tests")
    temperature = [21.5]

    def observe(_: Any) -> list[Observation]:
        return [Observation(temperature[0], {"room": "server"})]

    meter.create_observable_gauge("room.temperature", callbacks=[observe], unit="Cel")
    orders = meter.create_counter("orders", unit="1")
    try:
        orders.add(5, {"region": "eu"})
        assert provider.force_flush(30_000)
        time.sleep(1.0)
        orders.add(10, {"region": "eu"})
        temperature[0] = 22.0
        assert provider.force_flush(30_000)
    finally:
        provider.shutdown()

    http = httpx.Client(base_url=app_server.base_url, headers={"X-API-Key": key}, timeout=30)
    metrics = metrics_of(http, f"checkout-{encoding}")
    assert len(metrics) == 2, list(metrics)  # not one per process: no random instance id
    gauge = metrics['room.temperature{instance="web-1",room="server"}']
    # (shutdown() exports once more: the last values again)
    assert [v for _, v in readings_of(http, gauge["id"])][:2] == [21.5, 22.0]
    # A cumulative monotonic sum: 10 more orders over about a second, as a rate; no more
    # orders by the last export.
    counter = metrics['orders{instance="web-1",region="eu"}']
    rates = [v for _, v in readings_of(http, counter["id"])]
    assert 3.0 < rates[0] < 10.5, rates
    assert rates[1:] in ([], [0.0]), rates
    http.close()
