"""Where new readings go in a metric's chain: the gaps between neighbours that
APPEND_READINGS links them into (see its comment in common.metrics.queries).

A chain is in (timestamp, id) order: the reading's key. A batch is split against the
metric's newest reading: the readings after it are the tail, appended behind it; the rest
are late. Late readings are placed in runs (readings close in time): one index range read
per run gives the stored keys they fall among, and each late reading goes after the stored
reading just before it. So placing costs what the readings and their neighbourhood cost,
never the chain behind them (a reading before the oldest of 100,000 is one range read and a
probe, not a relink of 100,000).

Pure: keys in, gaps out; `ReadingRepository` reads the keys and writes the gaps.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from common.metrics.models import NewReading

Key = tuple[int, str]  # (timestamp ms, id): a reading's place in its chain

# Late readings further apart than this are placed by separate range reads, so that a read
# covers the readings sent and their neighbourhood, not the time between them.
RUN_SPAN_MS = 10 * 60_000
# How far before a run (then after, for a chain's first reading) its neighbour is looked for,
# widening until found; None: to the start (end) of time.
PROBE_WINDOWS_MS: tuple[int | None, ...] = (
    3_600_000,
    86_400_000,
    32 * 86_400_000,
    3 * 365 * 86_400_000,
    None,
)


def reading_key(reading: NewReading) -> Key:
    return reading.timestamp_ms, reading.id


def in_chain_order(readings: Iterable[NewReading]) -> list[NewReading]:
    """The readings in chain order, each id once (the first one sent wins)."""
    unique: dict[str, NewReading] = {}
    for reading in readings:
        unique.setdefault(reading.id, reading)
    return sorted(unique.values(), key=reading_key)


@dataclass(frozen=True)
class Gap:
    """Readings of one metric that go between two neighbours of its chain, in chain order:
    behind the newest reading (`tail`), after the stored reading `after_id`, or before the
    chain's first reading `before_id`."""

    metric_id: str
    readings: list[NewReading]
    tail: bool = False
    after_id: str | None = None
    before_id: str | None = None


def split_late(
    readings: Sequence[NewReading], latest: Key | None
) -> tuple[list[NewReading], list[NewReading]]:
    """Readings in chain order against the newest stored key: (late ones, the tail).
    A reading with the newest one's key is that reading, sent again: in neither."""
    if latest is None:
        return [], list(readings)
    late = [r for r in readings if reading_key(r) < latest]
    tail = [r for r in readings if reading_key(r) > latest]
    return late, tail


def merged(gaps: Iterable[Gap]) -> list[Gap]:
    """One gap per pair of neighbours: two runs can find the same stored reading before them
    (nothing stored between them), and two gaps between one pair would fork the chain."""
    by_place: dict[tuple[str, bool, str | None, str | None], list[NewReading]] = {}
    for gap in gaps:
        place = (gap.metric_id, gap.tail, gap.after_id, gap.before_id)
        by_place.setdefault(place, []).extend(gap.readings)
    return [
        Gap(metric_id, sorted(readings, key=reading_key), tail, after_id, before_id)
        for (metric_id, tail, after_id, before_id), readings in by_place.items()
        if readings
    ]


def runs(late: Sequence[NewReading]) -> list[list[NewReading]]:
    """Late readings (in chain order) cut where two are more than RUN_SPAN_MS apart."""
    cut: list[list[NewReading]] = []
    for reading in late:
        if cut and reading.timestamp_ms - cut[-1][-1].timestamp_ms <= RUN_SPAN_MS:
            cut[-1].append(reading)
        else:
            cut.append([reading])
    return cut


@dataclass
class Run:
    """Late readings of one metric placed among the stored keys of [start_ms, end_ms]."""

    metric_id: str
    readings: list[NewReading]
    start_ms: int
    end_ms: int
    # Filled by `place`:
    gaps: list[Gap] = field(default_factory=list)
    duplicates: int = 0
    # Readings before every stored key of the range: after the stored reading before the
    # range (to be probed), or before the chain's first one.
    below: list[NewReading] = field(default_factory=list)
    first_stored: Key | None = None  # the range's first stored key

    @classmethod
    def of(cls, metric_id: str, readings: list[NewReading]) -> Run:
        # From RUN_SPAN_MS before: the first reading's neighbour is most often in range.
        start = readings[0].timestamp_ms - RUN_SPAN_MS
        return cls(metric_id, readings, start, readings[-1].timestamp_ms)

    def place(self, stored: Sequence[Key]) -> None:
        """Place the readings among `stored`, the keys of the range in chain order. A
        reading whose key is stored is that reading sent again: a duplicate."""
        present = set(stored)
        by_neighbour: dict[str, list[NewReading]] = {}
        for reading in self.readings:
            key = reading_key(reading)
            if key in present:
                self.duplicates += 1
                continue
            before = bisect_left(stored, key)
            if before == 0:
                self.below.append(reading)
            else:
                by_neighbour.setdefault(stored[before - 1][1], []).append(reading)
        self.gaps = [
            Gap(self.metric_id, readings, after_id=after)
            for after, readings in by_neighbour.items()
        ]
        self.first_stored = stored[0] if stored else None
