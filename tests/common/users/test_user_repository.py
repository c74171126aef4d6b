"""Users in the graph, on each engine."""

from __future__ import annotations

import pytest

from common.errors import ConflictError
from common.stores import Repositories
from common.users.keys import new_api_key
from tests.support import unique_name


def test_user_found_by_key_hash_only(graph: Repositories) -> None:
    key = new_api_key()
    user = graph.users.create(unique_name("alice"), key.hashed)
    assert graph.users.find_by_key_hash(key.hashed) == user
    assert graph.users.find_by_key_hash(new_api_key().hashed) is None


def test_user_names_are_unique(graph: Repositories) -> None:
    # resolved_by names who resolved an incident: two users of one name would make it
    # ambiguous.
    name = unique_name("alice")
    first = graph.users.create(name, new_api_key().hashed)
    key = new_api_key()
    with pytest.raises(ConflictError, match=f"a user named '{name}' exists already"):
        graph.users.create(name, key.hashed)
    assert graph.users.find_by_key_hash(key.hashed) is None  # nothing was created
    assert graph.users.create(name.upper(), new_api_key().hashed).id != first.id
