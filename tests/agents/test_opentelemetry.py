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
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from common.users.models import User
from tests.agents_support import bearer, metrics_of, readings_of
from tests.support import AppServer

# Generous: on a loaded machine (Neo4j) a first export that creates the metrics can take
# tens of seconds; an export that times out is lost, and the rates below would be wrong.
EXPORT_TIMEOUT = 120

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
        endpoint=f"{app_server.base_url}/v1/metrics", headers=bearer(key), timeout=EXPORT_TIMEOUT
    )
    # The SDK's force_flush() says True even when an export failed: each export's result is
    # kept, so that a lost export fails the test as such, not as wrong rates further down.
    results: list[MetricExportResult] = []
    send = exporter.export

    def export(*args: Any, **kwargs: Any) -> MetricExportResult:
        results.append(send(*args, **kwargs))
        return results[-1]

    exporter.export = export  # type: ignore[method-assign]
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
        # Each flush collects (stamps the points), then exports: the two collections are
        # between first_started..first_done and second_started..second_done.
        orders.add(5, {"region": "eu"})
        first_started = time.monotonic()
        assert provider.force_flush(EXPORT_TIMEOUT * 1000)
        first_done = time.monotonic()
        time.sleep(1.0)
        orders.add(10, {"region": "eu"})
        temperature[0] = 22.0
        second_started = time.monotonic()
        assert provider.force_flush(EXPORT_TIMEOUT * 1000)
        second_done = time.monotonic()
    finally:
        provider.shutdown()
    assert results and set(results) == {MetricExportResult.SUCCESS}, results

    http = httpx.Client(base_url=app_server.base_url, headers={"X-API-Key": key}, timeout=30)
    metrics = metrics_of(http, f"checkout-{encoding}")
    assert len(metrics) == 2, list(metrics)  # not one per process: no random instance id
    gauge = metrics['room.temperature{instance="web-1",room="server"}']
    # (shutdown() exports once more: the last values again)
    assert [v for _, v in readings_of(http, gauge["id"])][:2] == [21.5, 22.0]
    # A cumulative monotonic sum: 10 more orders between the two collections, as a rate
    # (the first export's time is in between: on a loaded machine, seconds); no more orders
    # by the last export.
    counter = metrics['orders{instance="web-1",region="eu"}']
    rates = [v for _, v in readings_of(http, counter["id"])]
    slowest, fastest = 10 / (second_done - first_started), 10 / (second_started - first_done)
    assert 0.99 * slowest <= rates[0] <= 1.01 * fastest, (rates, slowest, fastest)
    assert rates[1:] in ([], [0.0]), rates
    http.close()
