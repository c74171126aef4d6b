"""Paged lists (readings, anomalies): a page capped by PAGE_SIZE_MAX still says where the
next page starts, and a cursor this API did not make is refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from common.anomalies.models import NewAnomaly
from common.stores import Repositories
from common.users.models import User
from tests.support import AppServer, start_app, stop_app


@pytest.fixture
def small_pages_app(service_env: dict[str, str]) -> Iterator[AppServer]:
    app = start_app(service_env, {"PAGE_SIZE_MAX": "5"})
    yield app
    stop_app(app)


@pytest.fixture
def paged_http(
    small_pages_app: AppServer, make_user: Callable[..., tuple[User, str]]
) -> Iterator[httpx.Client]:
    _, key = make_user()
    with httpx.Client(
        base_url=small_pages_app.base_url, headers={"X-API-Key": key}, timeout=30
    ) as http:
        yield http


def metric_with_readings(http: httpx.Client) -> str:
    """A new metric's id; its 12 readings r00..r11 are a minute apart."""
    service = http.post("/api/services", json={"name": "paged"}).json()
    metric = http.post("/api/metrics", json={"name": "cpu", "service_id": service["id"]})
    metric_id: str = metric.json()["id"]
    batch = [
        {"id": f"r{i:02}", "value": float(i), "timestamp": f"2026-11-25T10:{i:02}:00Z"}
        for i in range(12)
    ]
    answer = http.post(f"/api/metrics/{metric_id}/readings", json={"readings": batch})
    assert answer.status_code == 201
    return metric_id


def all_pages(http: httpx.Client, url: str, rows: str) -> list[str]:
    """The ids of every row of a paged list, following `next_cursor` with limit=10."""
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 10}
    for _ in range(10):
        page = http.get(url, params=params).json()
        assert len(page[rows]) <= 5
        seen += [row["id"] for row in page[rows]]
        if page["next_cursor"] is None:
            break
        params = {"limit": 10, "cursor": page["next_cursor"]}
    return seen


def anomaly_at(metric_id: str, reading_id: str, timestamp_ms: int) -> NewAnomaly:
    return NewAnomaly(
        metric_id, reading_id, timestamp_ms=timestamp_ms, value=9.0, expected=1.0, lower=0.0,
        upper=2.0, score=4.0, method="stl", event_start_ms=timestamp_ms,
        event_end_ms=timestamp_ms,
    )  # fmt: skip


def test_limit_above_page_size_max_still_gives_a_next_cursor(paged_http: httpx.Client) -> None:
    url = f"/api/metrics/{metric_with_readings(paged_http)}/readings"
    seen = all_pages(paged_http, url, "readings")
    assert seen == [f"r{i:02}" for i in range(12)]


def test_anomaly_pages_are_capped_and_return_each_anomaly_once(
    paged_http: httpx.Client, store: Repositories
) -> None:
    metric_id = metric_with_readings(paged_http)
    # Pairs of readings share an anomaly timestamp, so a page boundary falls in a tie.
    found = [anomaly_at(metric_id, f"r{i:02}", 1_700_000_000_000 + i // 2) for i in range(12)]
    assert len(store.anomalies.save(metric_id, found)) == 12
    url = f"/api/metrics/{metric_id}/anomalies"
    first = paged_http.get(url, params={"limit": 100}).json()
    assert len(first["anomalies"]) == 5 and first["next_cursor"] is not None
    in_order = sorted(found, key=lambda a: (a.timestamp_ms, a.id))
    seen = all_pages(paged_http, url, "anomalies")
    assert seen == [a.id for a in in_order]


def test_a_cursor_this_api_did_not_make_is_refused(paged_http: httpx.Client) -> None:
    metric_id = metric_with_readings(paged_http)
    for rows in ("readings", "anomalies"):
        # Not base64; "1234"; "x:r"; "99999999999999999999:r00" (past 64 bits).
        for cursor in ("bogus!", "MTIzNA==", "eDpy", "OTk5OTk5OTk5OTk5OTk5OTk5OTk6cjAw"):
            answer = paged_http.get(f"/api/metrics/{metric_id}/{rows}", params={"cursor": cursor})
            assert answer.status_code == 422
            assert answer.json()["detail"] == "cursor is not one this API returned"


def test_a_bad_timestamp_is_reported_before_a_bad_cursor(paged_http: httpx.Client) -> None:
    """The parameters are validated first: the client is told what it can see is wrong."""
    metric_id = metric_with_readings(paged_http)
    for rows in ("readings", "anomalies"):
        answer = paged_http.get(
            f"/api/metrics/{metric_id}/{rows}",
            params={"end": "1969-01-01T00:00:00Z", "cursor": "0"},
        )
        assert answer.status_code == 422
        assert "timestamp must be between" in answer.text
