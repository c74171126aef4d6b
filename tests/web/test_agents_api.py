"""Prometheus remote_write and OTLP/HTTP against the running app (real uvicorn, real store).

The remote write bodies here are built with the same prompb classes the receiver decodes
with; tests/agents/ sends them from a real Prometheus.
"""

from __future__ import annotations

import gzip
import json
import math
import struct
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from common.users.models import User
from tests.agents_support import (
    COUNTER,
    GAUGE,
    REMOTE_WRITE_HEADERS,
    bearer,
    metrics_of,
    readings_of,
    remote_write_body,
    snappy,
    write_request,
)
from tests.support import AppServer, start_app, stop_app

T0 = 1_780_000_000_000  # epoch ms, 2026-05-28
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


@pytest.fixture
def agent(
    app_server: AppServer, make_user: Callable[..., tuple[User, str]]
) -> Iterator[httpx.Client]:
    """A client with a fresh user's key sent as Prometheus sends it (Authorization: Bearer)."""
    _, key = make_user("agent")
    with httpx.Client(base_url=app_server.base_url, headers=bearer(key), timeout=60) as http:
        yield http


def write(agent: httpx.Client, body: bytes, **params: str) -> httpx.Response:
    return agent.post("/api/v1/write", content=body, headers=REMOTE_WRITE_HEADERS, params=params)


def test_gauges_and_counters_arrive_as_metrics_with_readings(agent: httpx.Client) -> None:
    load = {"__name__": "node_load1", "job": "node", "instance": "h:9100"}
    idle = {"__name__": "node_cpu_seconds_total", "job": "node", "cpu": "0", "mode": "idle"}
    first = remote_write_body(
        [(load, [(T0, 0.5), (T0 + 15_000, 0.75)]), (idle, [(T0, 100.0), (T0 + 15_000, 107.5)])]
    )
    assert write(agent, first).status_code == 204
    # The next request's first rate is taken against the last sample of the one before; a
    # reset (the counter restarted) counts from zero; a staleness marker is skipped.
    second = remote_write_body(
        [
            (load, [(T0 + 30_000, 1.0), (T0 + 45_000, STALE_NAN)]),
            (idle, [(T0 + 30_000, 115.0), (T0 + 45_000, 3.0)]),
        ]
    )
    assert write(agent, second).status_code == 204

    metrics = metrics_of(agent, "node")
    assert set(metrics) == {
        'node_load1{instance="h:9100"}',
        'node_cpu_seconds_total{cpu="0",mode="idle"}',
    }
    gauge = readings_of(agent, metrics['node_load1{instance="h:9100"}']["id"])
    assert [value for _, value in gauge] == [0.5, 0.75, 1.0]
    idle_metric = metrics['node_cpu_seconds_total{cpu="0",mode="idle"}']
    assert idle_metric["labels"] == {"cpu": "0", "mode": "idle"}  # kept, the service's not
    rates = readings_of(agent, idle_metric["id"])
    assert [value for _, value in rates] == pytest.approx([0.5, 0.5, 0.2])
    assert rates[0][0].startswith("2026-05-28T")


def test_a_retried_request_stores_nothing_twice(agent: httpx.Client) -> None:
    body = remote_write_body(
        [
            ({"__name__": "up", "job": "retry"}, [(T0, 1.0), (T0 + 1000, 1.0)]),
            ({"__name__": "requests_total", "job": "retry"}, [(T0, 5.0), (T0 + 1000, 6.0)]),
        ]
    )
    for _ in range(3):
        assert write(agent, body).status_code == 204
    metrics = metrics_of(agent, "retry")
    assert len(readings_of(agent, metrics["up"]["id"])) == 2
    assert [v for _, v in readings_of(agent, metrics["requests_total"]["id"])] == [1.0]


def test_metadata_makes_a_counter_of_a_name_without_suffix(agent: httpx.Client) -> None:
    # Prometheus sends metadata in requests of its own; the samples come later.
    assert (
        write(agent, remote_write_body([], {"ticks": COUNTER, "odd_total": GAUGE})).status_code
        == 204
    )
    samples = [(T0, 10.0), (T0 + 2000, 14.0)]
    body = remote_write_body(
        [
            ({"__name__": "ticks", "job": "meta"}, samples),
            ({"__name__": "odd_total", "job": "meta"}, samples),
        ]
    )
    assert write(agent, body).status_code == 204
    metrics = metrics_of(agent, "meta")
    assert [v for _, v in readings_of(agent, metrics["ticks"]["id"])] == [2.0]
    assert [v for _, v in readings_of(agent, metrics["odd_total"]["id"])] == [10.0, 14.0]


def test_mapping_per_request(agent: httpx.Client) -> None:
    body = remote_write_body(
        [
            (
                {"__name__": "node_load5", "job": "node", "instance": "a:9100", "team": "db"},
                [(T0, 1.0)],
            )
        ]
    )
    assert write(agent, body, service_labels="team", drop_labels="instance").status_code == 204
    assert set(metrics_of(agent, "db")) == {'node_load5{job="node"}'}


def test_series_that_cannot_be_named_are_refused_by_name_and_the_rest_stored(
    agent: httpx.Client,
) -> None:
    body = remote_write_body(
        [
            ({"__name__": "fine", "job": "mixed"}, [(T0, 1.0)]),
            ({"__name__": "long", "job": "mixed", "path": "p" * 150}, [(T0, 1.0), (T0 + 1, 2.0)]),
        ]
    )
    response = write(agent, body)
    assert response.status_code == 400  # Prometheus does not retry it: it cannot succeed
    detail = response.json()["detail"]
    assert "stored 1 of 3 samples" in detail and "drop_labels" in detail, detail
    assert set(metrics_of(agent, "mixed")) == {"fine"}


@pytest.fixture
def limited_agent(
    service_env: dict[str, str], make_user: Callable[..., tuple[User, str]]
) -> Iterator[httpx.Client]:
    """An agent whose owner may have 3 metrics."""
    app = start_app(service_env, {"MAX_METRICS_PER_OWNER": "3"})
    _, key = make_user("limited")
    try:
        with httpx.Client(base_url=app.base_url, headers=bearer(key), timeout=60) as http:
            yield http
    finally:
        stop_app(app)


def test_series_past_the_metric_limit_are_429_by_name_and_the_rest_stored(
    limited_agent: httpx.Client,
) -> None:
    series = [
        ({"__name__": f"m{i}_total", "job": "capped"}, [(T0, 1.0), (T0 + 1000, 3.0)])
        for i in range(5)
    ]
    response = write(limited_agent, remote_write_body(series))
    assert response.status_code == 429, response.text  # a retry may help once under the limit
    detail = response.json()["detail"]
    assert "MAX_METRICS_PER_OWNER" in detail and "capped/m3_total" in detail, detail
    assert "stored 3 of 10 samples" in detail, detail
    assert sorted(metrics_of(limited_agent, "capped")) == ["m0_total", "m1_total", "m2_total"]
    # The same request again: nothing stored twice; the refused counters kept no base, so
    # they are refused again (not skipped as seen), still by name.
    again = write(limited_agent, remote_write_body(series))
    assert again.status_code == 429 and "capped/m4_total" in again.json()["detail"]
    metrics = metrics_of(limited_agent, "capped")
    assert [v for _, v in readings_of(limited_agent, metrics["m0_total"]["id"])] == [2.0]
    # OTLP says so in partial_success, as the spec asks of a partly refused export.
    otlp = limited_agent.post(
        "/v1/metrics",
        content=otlp_json([{"name": "room", "gauge": {"dataPoints": [gauge_point(T0, 20.5)]}}]),
        headers={"Content-Type": "application/json"},
    )
    assert otlp.status_code == 200, otlp.text
    partial = otlp.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "1"
    assert "MAX_METRICS_PER_OWNER" in partial["errorMessage"], partial


def test_key_is_required(app_server: AppServer) -> None:
    body = remote_write_body([({"__name__": "up", "job": "x"}, [(T0, 1.0)])])
    anonymous = httpx.post(
        f"{app_server.base_url}/api/v1/write", content=body, headers=REMOTE_WRITE_HEADERS
    )
    assert anonymous.status_code == 401
    wrong = httpx.post(
        f"{app_server.base_url}/api/v1/write",
        content=body,
        headers={**REMOTE_WRITE_HEADERS, **bearer("nno_wrong")},
    )
    assert wrong.status_code == 401


# --- hostile bodies: a clear 4xx, nothing stored, the service stays up ----------------------


def test_truncated_snappy_is_400(agent: httpx.Client) -> None:
    body = remote_write_body([({"__name__": "up", "job": "hostile"}, [(T0, 1.0)] * 50)])
    response = write(agent, body[: len(body) // 2])
    assert response.status_code == 400
    assert "snappy" in response.json()["detail"]


def test_garbage_protobuf_is_400(agent: httpx.Client) -> None:
    response = write(agent, snappy(b"\xff\xff\xff\xff garbage \x00\x01"))
    assert response.status_code == 400
    assert "WriteRequest" in response.json()["detail"]


def test_a_body_that_is_not_snappy_is_400(agent: httpx.Client) -> None:
    raw = write_request([({"__name__": "up", "job": "hostile"}, [(T0, 1.0)])]).SerializeToString()
    plain = {**REMOTE_WRITE_HEADERS}
    del plain["Content-Encoding"]
    response = agent.post("/api/v1/write", content=raw, headers=plain)
    assert response.status_code == 400
    assert "Content-Encoding: snappy" in response.json()["detail"]


def test_a_snappy_bomb_is_413_before_decompressing(agent: httpx.Client) -> None:
    bomb = snappy(b"\x00" * (40 * 1024 * 1024))  # 40 MB of zeros in ~2 MB
    response = write(agent, bomb)
    assert response.status_code == 413
    assert "AGENT_MAX_DECODED_BYTES" in response.json()["detail"]


def test_a_100_mb_body_is_413_without_reading_it_all(agent: httpx.Client) -> None:
    chunk = b"\x00" * (1024 * 1024)

    def hundred_megabytes() -> Iterator[bytes]:
        for _ in range(100):
            yield chunk

    started = time.monotonic()
    try:
        response = agent.post(
            "/api/v1/write", content=hundred_megabytes(), headers=REMOTE_WRITE_HEADERS
        )
    except httpx.TransportError:
        response = None  # the server may close before the upload ends: also a refusal
    if response is not None:
        assert response.status_code == 413
        assert "limit" in response.json()["detail"]
    assert time.monotonic() - started < 30
    assert agent.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        ({"__name__": "up", 'bad"quote': "x", "job": "hostile"}, "label name"),
        ({"__name__": "up", "bad\nnewline": "x", "job": "hostile"}, "label name"),
        ({"__name__": 'up"{x="1"}', "job": "hostile"}, "metric name"),
        ({"job": "hostile"}, "metric name"),
    ],
)
def test_names_outside_the_spec_refuse_the_request_whole(
    agent: httpx.Client, labels: dict[str, str], words: str
) -> None:
    good = ({"__name__": "up", "job": "hostile"}, [(T0, 1.0)])
    response = write(agent, remote_write_body([good, (labels, [(T0, 1.0)])]))
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert words in detail and "nothing was stored" in detail, detail
    assert "\n" not in detail
    assert metrics_of(agent, "hostile") == {}


def many_series(count: int, job: str) -> bytes:
    request = write_request([])
    for index in range(count):
        ts = request.timeseries.add()
        ts.labels.add(name="__name__", value="s")
        ts.labels.add(name="i", value=str(index))
        ts.labels.add(name="job", value=job)
        ts.samples.add(timestamp=T0, value=1.0)
    return snappy(request.SerializeToString())


@pytest.mark.parametrize(
    ("count", "limit"),
    [
        (1_000_000, "MAX_BODY_BYTES"),  # 6 MB sent, 64 MB once decompressed
        (60_000, "AGENT_MAX_SAMPLES_PER_REQUEST"),  # 0.4 MB, 3.5 MB decompressed
    ],
)
def test_a_million_series_request_is_413_and_nothing_is_stored(
    agent: httpx.Client, count: int, limit: str
) -> None:
    job = f"many{count}"
    started = time.monotonic()
    response = write(agent, many_series(count, job))
    assert response.status_code == 413, response.text[:300]
    detail = response.json()["detail"]
    assert limit in detail, detail
    assert time.monotonic() - started < 60
    assert metrics_of(agent, job) == {}
    assert agent.get("/health").status_code == 200


# --- OTLP/HTTP ------------------------------------------------------------------------------


def otlp_json(metrics: list[dict[str, object]], service: str = "shop") -> bytes:
    return json.dumps(
        {
            "resourceMetrics": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                    },
                    "scopeMetrics": [{"metrics": metrics}],
                }
            ]
        }
    ).encode()


def ns(ms: int) -> str:
    return str(ms * 1_000_000)


def gauge_point(ms: int, value: float) -> dict[str, object]:
    return {"timeUnixNano": ns(ms), "asDouble": value}


def test_otlp_json_sums_histograms_and_partial_success(agent: httpx.Client) -> None:
    body = otlp_json(
        [
            {
                "name": "orders",
                "sum": {
                    "aggregationTemporality": 1,  # delta: value per second
                    "isMonotonic": True,
                    "dataPoints": [
                        {
                            "startTimeUnixNano": ns(T0),
                            "timeUnixNano": ns(T0 + 10_000),
                            "asInt": "50",
                        },
                        {"timeUnixNano": ns(T0 + 20_000), "asInt": "7"},  # no interval
                    ],
                },
            },
            {
                "name": "latency",
                "histogram": {
                    "aggregationTemporality": 2,
                    "dataPoints": [
                        {
                            "timeUnixNano": ns(T0 + t),
                            "count": str(c),
                            "sum": s,
                            "attributes": [{"key": "route", "value": {"stringValue": "/pay"}}],
                        }
                        for t, c, s in ((0, 10, 1.0), (10_000, 30, 3.0))
                    ],
                },
            },
        ]
    )
    response = agent.post(
        "/v1/metrics",
        content=gzip.compress(body),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    partial = response.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "1"
    assert "start_time_unix_nano" in partial["errorMessage"]
    metrics = metrics_of(agent, "shop")
    assert [v for _, v in readings_of(agent, metrics["orders"]["id"])] == [5.0]
    count = metrics['latency_count{route="/pay"}']
    assert [v for _, v in readings_of(agent, count["id"])] == [2.0]
    assert [v for _, v in readings_of(agent, metrics['latency_sum{route="/pay"}']["id"])] == [0.2]


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("application/x-protobuf", b"\xff\xff\xff garbage", 400),
        ("application/json", b'{"resourceMetrics": [{"resource": 7}]}', 400),
        ("application/json", b"{" * 100_000, 400),
        ("text/plain", b"hello", 415),
    ],
)
def test_otlp_malformed_bodies(
    agent: httpx.Client, content_type: str, body: bytes, status: int
) -> None:
    response = agent.post("/v1/metrics", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text[:300]
    assert response.json()["detail"]


def test_otlp_gzip_bomb_is_413(agent: httpx.Client) -> None:
    bomb = gzip.compress(b" " * (40 * 1024 * 1024))
    response = agent.post(
        "/v1/metrics",
        content=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 413


def test_non_finite_values_are_skipped(agent: httpx.Client) -> None:
    body = remote_write_body(
        [({"__name__": "temp", "job": "nan"}, [(T0, math.inf), (T0 + 1, 20.0), (T0 + 2, math.nan)])]
    )
    assert write(agent, body).status_code == 204
    metrics = metrics_of(agent, "nan")
    assert [v for _, v in readings_of(agent, metrics["temp"]["id"])] == [20.0]
