"""Users in the graph."""

from __future__ import annotations

from common.epoch import from_epoch_ms, now_ms
from common.errors import ConflictError
from common.graph.executors import CypherExecutor, Row
from common.ids import new_id
from common.users import queries as q
from common.users.models import User


def _user(row: Row) -> User:
    return User(id=row["id"], name=row["name"], created_at=from_epoch_ms(row["created_at"]))


class UserRepository:
    def __init__(self, executor: CypherExecutor):
        self.executor = executor

    def create(self, name: str, api_key_hash: str) -> User:
        """A new user; ConflictError if a user of that name exists."""
        user_id = new_id()
        rows = self.executor.write(
            q.CREATE_USER,
            {"id": user_id, "name": name, "api_key_hash": api_key_hash, "created_at": now_ms()},
        )
        if rows[0]["clashes"]:
            raise ConflictError(f"a user named {name!r} exists already: pick another name")
        return _user(self.executor.read(q.GET_USER, {"id": user_id})[0])

    def find_by_key_hash(self, api_key_hash: str) -> User | None:
        rows = self.executor.read(q.FIND_USER_BY_KEY_HASH, {"api_key_hash": api_key_hash})
        return _user(rows[0]) if rows else None
