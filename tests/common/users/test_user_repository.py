"""Users in the graph, on each engine."""

from __future__ import annotations

from common.stores import Repositories
from common.users.keys import new_api_key


def test_user_found_by_key_hash_only(graph: Repositories) -> None:
    key = new_api_key()
    user = graph.users.create("alice", key.hashed)
    assert graph.users.find_by_key_hash(key.hashed) == user
    assert graph.users.find_by_key_hash(new_api_key().hashed) is None
