"""Making a user with its key, and finding the user a key belongs to."""

from __future__ import annotations

from common.users.keys import ApiKey, hash_api_key, new_api_key
from common.users.models import User
from common.users.repository import UserRepository


def create_user(users: UserRepository, name: str) -> tuple[User, ApiKey]:
    """A new user and its API key (the plain key exists only in what this returns)."""
    key = new_api_key()
    return users.create(name, key.hashed), key


def user_of_key(users: UserRepository, plain_key: str) -> User | None:
    return users.find_by_key_hash(hash_api_key(plain_key))
