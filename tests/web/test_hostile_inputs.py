"""Hostile input, case by case, with the answer expected for each.

Every case is either refused with a 4xx whose message says what is wrong, or stored
verbatim and read back identically; and in both cases nothing stored before changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from common.metrics.integrity import check_chain
from common.stores import Repositories
from tests.support import AppServer

T0 = datetime(2026, 2, 1, tzinfo=UTC)
JSON = {"Content-Type": "application/json"}

CYPHER = [
    '"}) MATCH (n) DETACH DELETE n //',
    "'}) MATCH (n) DETACH DELETE n //",
    "$param",
    "`backticks` MATCH (n) RETURN n",
    'x" OR 1=1 OR "',
    '\\"; CALL db.labels() //',
    "}]->(m) SET m.name = 'pwned' WITH 1 AS x MATCH (y",
    "CYPHER runtime=slotted MATCH (n) DELETE n",
    "\\u0041 \\n \\\\ \\",
]
UNICODE = [
    "🔥 cpu 🚀",
    "מעבד עומס",  # RTL
    "e\u0301\u0327\u0308 combining",
    "\u202eRTL override\u202c",
    "zero\u200bwidth\u200djoiner",
    "漢字かなカナ",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
]


@dataclass
class Owner:
    http: httpx.Client
    service_id: str
    metric_id: str  # holds one reading, "keep"
    bystander_id: str  # another metric with three readings


@pytest.fixture
def owner(client: httpx.Client, store: Repositories) -> Iterator[Owner]:
    service = client.post("/api/services", json={"name": "target", "description": "d"}).json()
    metric_id, bystander_id = (
        client.post("/api/metrics", json={"name": name, "service_id": service["id"]}).json()["id"]
        for name in ("cpu", "mem")
    )
    keep = {"id": "keep", "value": 7.0, "timestamp": T0.isoformat()}
    assert client.post(f"/api/metrics/{metric_id}/readings", json=keep).status_code == 201
    others = [
        {"id": f"o{i}", "value": float(i), "timestamp": (T0 + timedelta(seconds=i)).isoformat()}
        for i in range(3)
    ]
    response = client.post(f"/api/metrics/{bystander_id}/readings", json={"readings": others})
    assert response.status_code == 201
    yield Owner(client, service["id"], metric_id, bystander_id)


def snapshot(owner: Owner, store: Repositories) -> dict[str, Any]:
    """What was stored, through the API and straight from the graph."""
    http = owner.http
    windows = {
        metric_id: store.readings.read_window(metric_id, None, None)
        for metric_id in (owner.metric_id, owner.bystander_id)
    }
    return {
        "services": http.get("/api/services").json(),
        "metrics": http.get(f"/api/metrics/service/{owner.service_id}").json(),
        "windows": {
            metric_id: (window.ids, window.timestamps_ms.tolist(), window.values.tolist())
            for metric_id, window in windows.items()
        },
    }


def message(response: httpx.Response) -> str:
    """The error's text: the detail string, or every msg of a validation error list."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return detail
    return " | ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in detail)


def nested(depth: int) -> bytes:
    return b'{"readings": ' + b"[" * depth + b"]" * depth + b"}"


def big_body(megabytes: int) -> bytes:
    one = b'{"value": 1.5, "id": "' + b"x" * 80 + b'"},'
    count = megabytes * 1024 * 1024 // len(one)
    return b'{"readings": [' + one * count + b'{"value": 1}]}'


def readings_of(count: int) -> bytes:
    return json.dumps({"readings": [{"value": i} for i in range(count)]}).encode()


# (body as bytes or JSON-able, content type, expected status, words the message must hold)
READINGS = "/api/metrics/{metric}/readings"
REFUSED: list[Any] = [
    # Values.
    pytest.param(READINGS, b'{"value": NaN}', JSON, 422, "finite", id="nan"),
    pytest.param(READINGS, b'{"value": Infinity}', JSON, 422, "finite", id="infinity"),
    pytest.param(READINGS, b'{"value": -Infinity}', JSON, 422, "finite", id="minus-infinity"),
    pytest.param(READINGS, b'{"value": 1e309}', JSON, 422, "finite", id="1e309"),
    pytest.param(READINGS, {"value": 1.7976931348623157e308}, JSON, 422, "1e308", id="max-float"),
    pytest.param(READINGS, {"value": True}, JSON, 422, "number", id="boolean-value"),
    pytest.param(READINGS, {"value": "1.5"}, JSON, 422, "number", id="string-value"),
    pytest.param(READINGS, {"value": None}, JSON, 422, "number", id="null-value"),
    pytest.param(READINGS, {"value": [1]}, JSON, 422, "number", id="list-value"),
    pytest.param(READINGS, {"value": 10**400}, JSON, 422, "value", id="huge-integer"),
    # Timestamps as ISO strings.
    *[
        pytest.param(READINGS, {"value": 1, "timestamp": ts}, JSON, 422, "timestamp", id=name)
        for name, ts in [
            ("ts-9999", "9999-12-31T23:59:59Z"),
            ("ts-9999-west", "9999-12-31T23:59:59-23:59"),
            ("ts-0001-east", "0001-01-01T00:00:00+23:59"),
            ("ts-before-1970", "1969-12-31T23:59:59Z"),
            ("ts-2200", "2200-01-01T00:00:00Z"),
            ("ts-year-0", "0000-01-01T00:00:00Z"),
            ("ts-negative-year", "-0001-01-01T00:00:00Z"),
            ("ts-five-digit-year", "+275760-09-13T00:00:00Z"),
            ("ts-garbage", "2026-13-45T25:61:61Z"),
            ("ts-empty", ""),
        ]
    ],
    # Timestamps as numbers (seconds or ms? the API refuses to guess).
    *[
        pytest.param(READINGS, {"value": 1, "timestamp": ts}, JSON, 422, "ISO 8601", id=name)
        for name, ts in [
            ("ts-epoch-seconds", 1_700_000_000),
            ("ts-epoch-ms", 1_700_000_000_000),
            ("ts-negative-number", -1),
            ("ts-huge-number", 1e20),
            ("ts-float", 1.5),
            ("ts-numeric-string", "1700000000"),
        ]
    ],
    # Size and shape.
    pytest.param(READINGS, readings_of(10_001), JSON, 413, "10000", id="10001-readings"),
    pytest.param(READINGS, big_body(20), JSON, 413, "limit", id="20MB-body"),
    pytest.param(READINGS, nested(100_000), JSON, 422, "nested too deeply", id="nested-100000"),
    pytest.param(
        "/api/services",
        b'{"name": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}",
        JSON,
        422,
        "nested too deeply",
        id="nested-objects-in-name",
    ),
    pytest.param(READINGS, b"", JSON, 422, "body", id="empty-body"),
    pytest.param(READINGS, b"null", JSON, 422, "body", id="null-body"),
    pytest.param(READINGS, b'{"value": 1,}', JSON, 422, "JSON", id="trailing-comma"),
    pytest.param(READINGS, b'{"value": 1, "id": "\xff\xfe"}', JSON, 400, "UTF-8", id="not-utf8"),
    pytest.param(
        READINGS,
        {"readings": [{"value": 1}] * 2, "value": 1},
        JSON,
        422,
        "Extra",
        id="batch-and-single",
    ),
    # Wrong content types.
    pytest.param(
        READINGS, b'{"value": 1}', {"Content-Type": "text/plain"}, 415, "JSON", id="text-plain"
    ),
    pytest.param(
        READINGS,
        b"value=1",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "JSON",
        id="form",
    ),
    pytest.param(
        READINGS,
        b"<reading><value>1</value></reading>",
        {"Content-Type": "application/xml"},
        415,
        "JSON",
        id="xml",
    ),
    pytest.param(
        "/api/services",
        b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--\r\n',
        {"Content-Type": "multipart/form-data; boundary=b"},
        415,
        "JSON",
        id="multipart",
    ),
    # Names and ids: control characters.
    *[
        pytest.param("/api/services", {"name": f"a{char}b"}, JSON, 422, "name", id=name)
        for name, char in [
            ("name-nul", "\x00"),
            ("name-newline", "\n"),
            ("name-escape", "\x1b[31m"),
            ("name-del", "\x7f"),
            ("name-c1-nel", "\x85"),
        ]
    ],
    pytest.param(
        "/api/services",
        {"name": "ok", "description": "a\x00b"},
        JSON,
        422,
        "description",
        id="description-nul",
    ),
    pytest.param(
        "/api/services", b'{"name": "a\\ud800b"}', JSON, 422, "name", id="name-lone-surrogate"
    ),
    pytest.param(READINGS, {"value": 1, "id": "a\x00b"}, JSON, 422, "id", id="reading-id-nul"),
    pytest.param(READINGS, {"value": 1, "id": "x" * 201}, JSON, 422, "id", id="reading-id-201"),
    pytest.param(
        "/api/metrics",
        {"name": "m", "service_id": "a\x00b"},
        JSON,
        422,
        "service_id",
        id="service-id-nul",
    ),
    pytest.param("/api/metrics/a%00b", {"name": "x"}, JSON, 422, "metric_id", id="path-id-nul"),
]


@pytest.mark.parametrize(("path", "body", "headers", "status", "words"), REFUSED)
def test_hostile_input_is_refused_and_changes_nothing(
    owner: Owner,
    store: Repositories,
    path: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    words: str,
) -> None:
    before = snapshot(owner, store)
    url = path.format(metric=owner.metric_id, service=owner.service_id)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    method = "PATCH" if url.startswith("/api/metrics/a%00b") else "POST"
    response = owner.http.request(method, url, content=content, headers=headers)
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    text = message(response)
    assert words.lower() in text.lower(), text
    assert len(response.content) < 10_000  # the input is not echoed back
    assert snapshot(owner, store) == before
    assert check_chain(store.readings, owner.metric_id).ok


@pytest.mark.parametrize("text", CYPHER + UNICODE)
def test_strings_are_stored_verbatim_in_every_field(
    owner: Owner, store: Repositories, text: str
) -> None:
    """Cypher-looking and exotic strings are data: stored as sent, read back identically."""
    http = owner.http
    before = snapshot(owner, store)["windows"][owner.bystander_id]
    name = text[:100]
    service = http.post("/api/services", json={"name": name, "description": text})
    assert service.status_code == 201, service.text
    service_id = service.json()["id"]
    assert http.get(f"/api/services/{service_id}").json()["name"] == name
    assert http.get(f"/api/services/{service_id}").json()["description"] == text

    metric = http.post(
        "/api/metrics", json={"name": name, "description": text, "service_id": service_id}
    )
    assert metric.status_code == 201, metric.text
    metric_id = metric.json()["id"]
    listed = http.get(f"/api/metrics/service/{service_id}").json()
    assert [(m["name"], m["description"]) for m in listed] == [(name, text)]

    reading = {"id": text, "value": 1.25, "timestamp": T0.isoformat()}
    stored = http.post(f"/api/metrics/{metric_id}/readings", json=reading)
    assert stored.status_code == 201 and stored.json()["ids"] == [text], stored.text
    resent = http.post(f"/api/metrics/{metric_id}/readings", json=reading)
    assert resent.json()["duplicates"] == 1  # the id is matched as data, exactly
    page = http.get(f"/api/metrics/{metric_id}/readings").json()["readings"]
    assert [(r["id"], r["value"]) for r in page] == [(text, 1.25)]
    assert store.readings.read_window(metric_id, None, None).ids == [text]

    renamed = http.patch(f"/api/metrics/{metric_id}", json={"description": text + "!"})
    assert renamed.status_code == 200 and renamed.json()["description"] == text + "!"
    # Nothing else moved: the other data is all there.
    assert snapshot(owner, store)["windows"][owner.bystander_id] == before
    assert http.get(f"/api/services/{owner.service_id}").json()["name"] == "target"


@pytest.mark.parametrize("text", CYPHER)
def test_cypher_in_paths_and_queries_is_just_an_unknown_id(
    owner: Owner, store: Repositories, text: str
) -> None:
    before = snapshot(owner, store)
    http = owner.http
    for url in (
        f"/api/services/{quote(text, safe='')}",
        f"/api/metrics/{quote(text, safe='')}",
        f"/api/metrics/{quote(text, safe='')}/readings",
        f"/api/metrics/service/{quote(text, safe='')}",
    ):
        response = http.get(url)
        # A "/" inside the id makes it another path: 404 either way (or 307 to drop a
        # trailing slash, which then answers 404).
        assert response.status_code in (404, 307), (url, response.text)
        if response.status_code == 404:
            assert "not found" in message(response).lower()
    cursor = http.get(f"/api/metrics/{owner.metric_id}/readings", params={"cursor": text})
    assert cursor.status_code == 422 and "cursor" in message(cursor)
    metric = http.post("/api/metrics", json={"name": "m", "service_id": text})
    assert metric.status_code == 404
    assert snapshot(owner, store) == before


def test_unicode_names_are_distinct_from_their_normal_forms(owner: Owner) -> None:
    """Names are compared as sent: no normalisation, so é (one code point) and e + ◌́ differ."""
    http = owner.http
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    for name in (composed, decomposed):
        response = http.post("/api/metrics", json={"name": name, "service_id": owner.service_id})
        assert response.status_code == 201, response.text
    names = [m["name"] for m in http.get(f"/api/metrics/service/{owner.service_id}").json()]
    assert composed in names and decomposed in names
    clash = http.post("/api/metrics", json={"name": composed, "service_id": owner.service_id})
    assert clash.status_code == 409


def test_app_server_still_healthy(app_server: AppServer) -> None:
    """None of the above took the process down (a 500 closes the connection, a crash more)."""
    assert httpx.get(f"{app_server.base_url}/health", timeout=5).status_code == 200
