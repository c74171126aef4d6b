"""Reading a stored result by time window: only the chunks the window overlaps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from common.jobs.results import chunks_in_window

CHUNK_POINTS = 10


class StoredChunks:
    """A result's chunks as ResultStore.chunks hands them out, counting what is read."""

    def __init__(self, timestamps: Sequence[int]) -> None:
        self.chunks = [
            {"timestamp_ms": list(timestamps[i : i + CHUNK_POINTS])}
            for i in range(0, len(timestamps), CHUNK_POINTS)
        ]
        self.read: list[int] = []
        self.expired = False

    def __call__(self, indexes: Sequence[int]) -> list[dict[str, Any]] | None:
        if self.expired:
            return None
        self.read.extend(indexes)
        return [self.chunks[i] for i in indexes]


def overlapping(stored: StoredChunks, start_ms: int, end_ms: int) -> list[int]:
    """The answer by looking at every chunk."""
    return [
        i
        for i, chunk in enumerate(stored.chunks)
        if any(start_ms <= t < end_ms for t in chunk["timestamp_ms"])
    ]


def test_every_window_gets_exactly_the_chunks_it_overlaps() -> None:
    # Uneven gaps (a reading every 1 to 9 ms), 95 points: 9 full chunks and a short one.
    timestamps = np.cumsum(np.random.default_rng(1).integers(1, 10, 95)).tolist()
    edges = [0, *timestamps, timestamps[-1] + 1, timestamps[-1] + 50]
    for start_ms in edges[::3]:
        for end_ms in edges[::4]:
            stored = StoredChunks(timestamps)
            found = chunks_in_window(stored, len(timestamps), CHUNK_POINTS, start_ms, end_ms)
            assert found is not None
            first, chunks = found
            expected = overlapping(stored, start_ms, end_ms)
            assert chunks == [stored.chunks[i] for i in expected], (start_ms, end_ms)
            if expected:
                assert first == expected[0]
            assert len(set(stored.read)) == len(stored.read), "a chunk was read twice"


def test_a_narrow_window_of_a_long_result_reads_few_chunks() -> None:
    timestamps = list(range(0, 100_000, 10))  # 10,000 points, 1,000 chunks
    stored = StoredChunks(timestamps)
    found = chunks_in_window(stored, len(timestamps), CHUNK_POINTS, 50_000, 50_150)
    assert found is not None
    first, chunks = found
    assert first == 500 and len(chunks) == 2
    assert len(stored.read) <= 2 * 10 + 2  # two binary searches over 1,000, and the window


def test_an_empty_window_or_result_reads_nothing() -> None:
    stored = StoredChunks(list(range(100)))
    assert chunks_in_window(stored, 100, CHUNK_POINTS, 50, 50) == (0, [])
    assert chunks_in_window(StoredChunks([]), 0, CHUNK_POINTS, 0, 10) == (0, [])
    assert stored.read == []


def test_an_expired_result_is_none() -> None:
    stored = StoredChunks(list(range(100)))
    stored.expired = True
    assert chunks_in_window(stored, 100, CHUNK_POINTS, 20, 40) is None
