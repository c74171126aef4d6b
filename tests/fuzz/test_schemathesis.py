"""Property-based fuzzing of the running app from its own OpenAPI schema (schemathesis).

Every operation gets generated requests, valid and invalid, with a valid key and without
one. With a key: no 5xx, and every response conforms to the schema (status documented,
body matching its model, content type, headers). Without a key: 401 everywhere except the
public docs and health endpoints.

Random path ids are almost always unknown (404); each valid case is therefore also sent
with the ids of a service and metric the caller owns, so the success paths are fuzzed too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from common.settings import Settings
from common.users.models import User
from tests.support import AppServer
from web.main import create_app
from web.schemas.fields import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# Examples per operation (34 operations): about 3 minutes on 2 busy cores.
EXAMPLES_WITH_KEY = 100
EXAMPLES_WITHOUT_KEY = 25
# Their bodies are binary: schema-valid random bytes are never a compressed protobuf, and
# are refused (400, 413, 415: documented) rather than accepted.
AGENT_PATHS = {"/api/v1/write", "/v1/metrics"}
schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")
PUBLIC_PATHS = {"/health", "/ready", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"}
FUZZ_SETTINGS = settings(
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure here is reproducible
    suppress_health_check=list(HealthCheck),
    database=None,
)


@dataclass(frozen=True)
class Owned:
    key: str
    service_id: str
    metric_id: str


@pytest.fixture(scope="module")
def owned(app_server: AppServer, make_user: Callable[..., tuple[User, str]]) -> Owned:
    _, key = make_user("fuzz")
    # 30 s, as the other fixtures: on a loaded machine a first write to Neo4j passes 5 s.
    with httpx.Client(base_url=app_server.base_url, headers={"X-API-Key": key}, timeout=30) as http:
        service_id = http.post("/api/services", json={"name": "fuzzed"}).json()["id"]
        metric = http.post("/api/metrics", json={"name": "cpu", "service_id": service_id})
        metric_id = metric.json()["id"]
        readings = [
            {"value": float(i), "timestamp": f"2026-01-01T00:00:{i:02d}Z"} for i in range(30)
        ]
        http.post(f"/api/metrics/{metric_id}/readings", json={"readings": readings})
    return Owned(key, service_id, metric_id)


def load_schema() -> Any:
    """The schema the app serves at /openapi.json (test_served_schema_is_the_fuzzed_one).

    Built in-process at import, because the test items are made per operation at collection,
    before the app server runs (schemathesis' lazy `from_fixture` does not work on pytest 9).
    """
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    return schemathesis.openapi.from_dict(app.openapi())


schema = load_schema()


def _timestamps(value: Any) -> list[datetime]:
    """Every string in `value` (nested) that parses as an ISO 8601 datetime."""
    if isinstance(value, dict):
        return [moment for item in value.values() for moment in _timestamps(item)]
    if isinstance(value, list):
        return [moment for item in value for moment in _timestamps(item)]
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return []
        return [moment if moment.tzinfo else moment.replace(tzinfo=UTC)]
    return []


# What a maintenance window must be, beyond its schema (common.maintenance.service.check).
WINDOW_RULES = (
    "give service_id or metric_id, not both",
    "a one-off window needs start and end",
    "end must be after start",
    "weekly.days:",
    "weekly.time_zone:",
    "a local time of day without an offset",
    "a time of day in whole minutes",
)


def expected_refusal(case: Any) -> str | tuple[str, ...] | None:
    """What a 422 must say for a schema-valid case that breaks a rule JSON Schema cannot
    express: timestamps in 1970 <= t < 2200 (readings: no later than the clock skew allows),
    a cursor the API itself returned, a webhook URL whose host resolves to a public
    address, and a maintenance window's rules."""
    if case.path == "/api/notification-channels" and case.method.upper() == "POST":
        return "webhook URL"
    moments = _timestamps(case.body) + _timestamps(case.query or {})
    if any(not EARLIEST_TIMESTAMP <= moment < LATEST_TIMESTAMP for moment in moments):
        return "timestamp must be between"
    adds_readings = case.method.upper() == "POST" and case.path.endswith("/readings")
    skew = timedelta(seconds=Settings(_env_file=None).max_clock_skew_seconds)  # type: ignore[call-arg]
    if adds_readings and any(moment > datetime.now(UTC) + skew for moment in moments):
        return "MAX_CLOCK_SKEW_SECONDS"
    if case.path.startswith("/api/maintenance-windows") and case.method.upper() != "DELETE":
        return WINDOW_RULES
    if (case.query or {}).get("cursor"):
        return "cursor is not one this API returned"
    return None


def without_auth(headers: dict[str, Any] | None) -> dict[str, Any]:
    return {
        name: value
        for name, value in (headers or {}).items()
        if name.lower() not in ("x-api-key", "authorization")
    }


def check_with_key(case: Any, base_url: str, key: str) -> None:
    # The key goes in as an explicit header (not into the case), so that schemathesis
    # knows it is real and not a generated, presumably invalid one.
    case.headers = without_auth(case.headers)
    auth = {"X-API-Key": key}
    if case.path in AGENT_PATHS:
        case.call_and_validate(
            base_url=base_url, headers=auth, excluded_checks=[positive_data_acceptance]
        )
        return
    refusal = None if case.meta.generation.mode.is_negative else expected_refusal(case)
    if refusal:
        response = case.call_and_validate(
            base_url=base_url, headers=auth, excluded_checks=[positive_data_acceptance]
        )
        if response.status_code == 422:
            refusals = (refusal,) if isinstance(refusal, str) else refusal
            assert any(text in response.text for text in refusals), response.text
        return
    case.call_and_validate(base_url=base_url, headers=auth)


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=EXAMPLES_WITH_KEY)
def test_api_with_key_conforms_to_its_schema(
    case: Any, app_server: AppServer, owned: Owned
) -> None:
    check_with_key(case, app_server.base_url, owned.key)
    # Again on the caller's own service and metric (not for DELETE: it would remove them).
    path_is_valid = not case.meta.is_negative_at(ParameterLocation.PATH)
    if case.path_parameters and path_is_valid and case.method.upper() != "DELETE":
        real = {"service_id": owned.service_id, "metric_id": owned.metric_id}
        case.path_parameters = {
            name: real.get(name, value) for name, value in case.path_parameters.items()
        }
        check_with_key(case, app_server.base_url, owned.key)


@schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=EXAMPLES_WITHOUT_KEY)
def test_api_without_key_is_401(case: Any, app_server: AppServer) -> None:
    case.headers = without_auth(case.headers)
    response = case.call(base_url=app_server.base_url)
    assert response.status_code < 500, response.text
    if case.path in PUBLIC_PATHS:
        assert response.status_code != 401
        return
    assert response.status_code == 401, (case.method, case.path, response.text)
    assert "API key" in response.json()["detail"]
    assert response.headers.get("www-authenticate") == ["Bearer"]


def test_served_schema_is_the_fuzzed_one(app_server: AppServer) -> None:
    served = httpx.get(f"{app_server.base_url}/openapi.json", timeout=10).json()
    assert served == schema.raw_schema
