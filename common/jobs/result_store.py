"""Job results in Redis: a hash per job with its meta document and its points in chunks.

A result (the per-point series, which can be megabytes) is kept for RESULT_TTL_SECONDS,
less than its job record (common.jobs.record_store), which then says that it expired.
What the meta and the chunks hold is in common.jobs.results.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from common import redis_keys as keys
from common.epoch import utc_now
from common.jobs.results import (
    PointColumns,
    ResultMeta,
    chunk_span,
    chunks_in_window,
    slice_points,
)
from common.redis_errors import redis_errors
from common.settings import Settings


class ResultStore:
    """Job results over one Redis client; outages come out as DependencyUnavailableError."""

    def __init__(self, client: redis.Redis, *, ttl_seconds: int):
        self.redis = client
        self.ttl_seconds = ttl_seconds

    @classmethod
    def from_settings(cls, client: redis.Redis, settings: Settings) -> ResultStore:
        return cls(client, ttl_seconds=settings.result_ttl_seconds)

    def save(self, meta: ResultMeta, chunks: Sequence[str]) -> datetime:
        """Store a result (replacing any earlier one of the job); returns when it expires."""
        key = keys.job_result(meta.job_id)
        mapping: dict[FieldT, EncodableT] = {"meta": meta.model_dump_json()}
        mapping.update({str(index): chunk for index, chunk in enumerate(chunks)})
        with redis_errors(), self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, self.ttl_seconds)
            pipe.execute()
        return utc_now() + timedelta(seconds=self.ttl_seconds)

    def meta(self, job_id: str) -> ResultMeta | None:
        """The result's meta document; None if the result expired (or never was)."""
        with redis_errors():
            raw = self.redis.hget(keys.job_result(job_id), "meta")
        return None if raw is None else ResultMeta.model_validate_json(raw)

    def points(
        self, meta: ResultMeta, offset: int = 0, limit: int | None = None
    ) -> PointColumns | None:
        """Points [offset, offset + limit) of the result (all from `offset` without a limit),
        reading only the chunks that hold them; None if the result expired meanwhile."""
        limit = meta.total if limit is None else limit
        indexes = chunk_span(offset, limit, meta.total, meta.chunk_points)
        chunks = self.chunks(meta.job_id, indexes)
        if chunks is None:
            return None
        return slice_points(chunks, indexes[0] if indexes else 0, offset, limit, meta.chunk_points)

    def points_in_window(self, meta: ResultMeta, start_ms: int, end_ms: int) -> PointColumns | None:
        """The points of the chunks holding start_ms <= timestamp < end_ms (so a few just
        outside may come too), reading only those and a few for the search (see
        chunks_in_window); None if the result expired meanwhile."""
        found = chunks_in_window(
            lambda indexes: self.chunks(meta.job_id, indexes),
            meta.total,
            meta.chunk_points,
            start_ms,
            end_ms,
        )
        if found is None:
            return None
        first, chunks = found
        offset = first * meta.chunk_points
        return slice_points(chunks, first, offset, meta.total, meta.chunk_points)

    def chunks(self, job_id: str, indexes: Sequence[int]) -> list[dict[str, Any]] | None:
        """Chunks of a result's points by index; None if the result (or a chunk) is gone."""
        if not indexes:
            return []
        with redis_errors():
            raws = self.redis.hmget(keys.job_result(job_id), [str(i) for i in indexes])
        if any(raw is None for raw in raws):
            return None
        return [dict(json.loads(raw)) for raw in raws]  # type: ignore[arg-type]
