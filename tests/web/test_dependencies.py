"""Service dependencies over HTTP: DEPENDS_ON between one owner's services."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from common.stores import Repositories
from common.users.models import User


def make_service(client: httpx.Client, name: str) -> str:
    response = client.post("/api/services", json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def names(refs: list[dict[str, str]]) -> list[str]:
    return [ref["name"] for ref in refs]


def test_dependency_is_shown_on_both_services(client: httpx.Client) -> None:
    checkout, payments = make_service(client, "checkout"), make_service(client, "payments")
    response = client.put(f"/api/services/{checkout}/dependencies/{payments}")
    assert response.status_code == 200, response.text
    assert names(response.json()["depends_on"]) == ["payments"]
    again = client.put(f"/api/services/{checkout}/dependencies/{payments}")
    assert names(again.json()["depends_on"]) == ["payments"]  # idempotent, no second edge
    upstream = client.get(f"/api/services/{payments}").json()
    assert upstream["dependents"] == [{"id": checkout, "name": "checkout"}]
    assert upstream["depends_on"] == []


def test_dependency_removed(client: httpx.Client) -> None:
    checkout, payments = make_service(client, "checkout"), make_service(client, "payments")
    client.put(f"/api/services/{checkout}/dependencies/{payments}")
    assert client.delete(f"/api/services/{checkout}/dependencies/{payments}").status_code == 204
    assert client.get(f"/api/services/{checkout}").json()["depends_on"] == []
    missing = client.delete(f"/api/services/{checkout}/dependencies/{payments}")
    assert missing.status_code == 404
    assert "does not depend on" in missing.json()["detail"]


def test_self_dependency_is_422(client: httpx.Client) -> None:
    checkout = make_service(client, "checkout")
    response = client.put(f"/api/services/{checkout}/dependencies/{checkout}")
    assert response.status_code == 422
    assert "itself" in response.json()["detail"]


def test_another_owners_service_is_404(
    client: httpx.Client, app_server: object, make_user: Callable[..., tuple[User, str]]
) -> None:
    mine = make_service(client, "mine")
    _, other_key = make_user("other")
    with httpx.Client(
        base_url=str(client.base_url), headers={"X-API-Key": other_key}, timeout=30
    ) as other:
        theirs = make_service(other, "theirs")
        assert other.put(f"/api/services/{theirs}/dependencies/{mine}").status_code == 404
    assert client.put(f"/api/services/{mine}/dependencies/{theirs}").status_code == 404
    assert client.put(f"/api/services/{theirs}/dependencies/{mine}").status_code == 404
    assert client.get(f"/api/services/{mine}").json()["dependents"] == []


def test_cycles_are_allowed_and_walks_stay_bounded(
    client: httpx.Client, store: Repositories
) -> None:
    ring = [make_service(client, f"ring-{i}") for i in range(5)]
    for i, service in enumerate(ring):
        following = ring[(i + 1) % len(ring)]
        assert client.put(f"/api/services/{service}/dependencies/{following}").status_code == 200
    # One hop from ring-0: only the two edges touching it, though the ring goes on.
    near = store.services.dependency_edges_near([ring[0]], max_hops=1).edges
    assert near == {(ring[4], ring[0]), (ring[0], ring[1])}
    everything = store.services.dependency_edges_near([ring[0]], max_hops=10).edges
    assert len(everything) == 5


def test_deleting_a_service_removes_its_dependencies(client: httpx.Client) -> None:
    checkout, payments = make_service(client, "checkout"), make_service(client, "payments")
    client.put(f"/api/services/{checkout}/dependencies/{payments}")
    assert client.delete(f"/api/services/{payments}").status_code == 204
    assert client.get(f"/api/services/{checkout}").json()["depends_on"] == []
