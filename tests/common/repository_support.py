"""What the repository contract tests share: owners, metrics and readings made directly.

The tests using these run once per engine (embedded FalkorDB, and a real Neo4j 5.26 when
it runs): see the `store` fixture in tests/conftest.py.
"""

from __future__ import annotations

from common.anomalies.models import NewAnomaly
from common.metrics.models import NewReading
from common.stores import Repositories
from common.users.keys import new_api_key
from common.users.models import User
from tests.support import unique_name

T0 = 1_700_000_000_000  # epoch ms


def make_owner(graph: Repositories) -> User:
    return graph.users.create(unique_name("owner"), new_api_key().hashed)


def make_metric(graph: Repositories) -> tuple[User, str]:
    owner = make_owner(graph)
    service = graph.services.create(owner.id, "api", None)
    return owner, graph.metrics.create(owner.id, service.id, "cpu", None).id


def readings(timestamps: list[int], prefix: str = "r") -> list[NewReading]:
    return [NewReading(id=f"{prefix}{t}", timestamp_ms=T0 + t, value=float(t)) for t in timestamps]


def anomaly_at(
    metric_id: str, reading_id: str, method: str = "rolling", timestamp_ms: int = T0
) -> NewAnomaly:
    return NewAnomaly(
        metric_id, reading_id, timestamp_ms=timestamp_ms, value=9.0, expected=1.0, lower=0.0,
        upper=2.0, score=4.0, method=method, event_start_ms=timestamp_ms,
        event_end_ms=timestamp_ms,
    )  # fmt: skip
