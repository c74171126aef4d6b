"""Redis errors that mean "unreachable", as the dependency outage they are (503, retry)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from common.errors import DependencyUnavailableError

REDIS = "redis"


@contextmanager
def redis_errors() -> Iterator[None]:
    """Redis that cannot be reached is a dependency outage (503), not a bug (500)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise DependencyUnavailableError(REDIS, str(exc)) from exc
    except redis.ResponseError as exc:
        if "LOADING" in str(exc) or "MISCONF" in str(exc):
            raise DependencyUnavailableError(REDIS, str(exc)) from exc
        raise
