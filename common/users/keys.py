"""API keys: random tokens shown once; only their SHA-256 is stored.

A fast hash is right here (unlike passwords): keys carry 256 bits of randomness, so there
is nothing to brute-force, and every request looks one up.
"""

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "nno_"


@dataclass(frozen=True)
class ApiKey:
    plain: str
    hashed: str


def hash_api_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def new_api_key() -> ApiKey:
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    return ApiKey(plain=plain, hashed=hash_api_key(plain))
