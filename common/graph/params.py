"""Parameters every repository passes the same way: new nodes, time ranges, keyset pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from common.epoch import now_ms
from common.ids import new_id

# Open ends of a time range, as epoch ms (both engines compare 64-bit integers).
MIN_MS = -(2**62)
MAX_MS = 2**62
# "No limit" for a LIMIT clause: FalkorDB returns nothing for a LIMIT past 32 bits.
NO_LIMIT = 2**31 - 1

# The key of the last row a page held: (epoch ms, id).
PageKey = tuple[int, str]

# Rows one write statement touches at most (anomalies saved, incident members joined, nodes
# deleted). FalkorDB runs one write at a time for every tenant, and Neo4j holds a write's
# locks until it commits: a statement this size takes tens of milliseconds, so another
# tenant's append waits that long at worst, never the whole of a big job or delete.
WRITE_BATCH = 1000
# Rows one read statement returns at most where a caller wants more (a job's window): the
# embedded server formats a reply holding every other client, so 100,000 readings are read
# as ten replies with other tenants' requests in between.
READ_BATCH = 10_000

T = TypeVar("T")


def batches(rows: Sequence[T], size: int = WRITE_BATCH) -> Iterator[Sequence[T]]:
    """`rows` in consecutive slices of at most `size`."""
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def until_short(write_batch: Callable[[], int], size: int = WRITE_BATCH) -> int:
    """Run `write_batch` (one bounded write statement that does at most `size` rows and
    says how many it did) until a batch comes back short of `size`; the rows done in all.

    For work that a statement cannot name ahead (every node of a kind left to delete or
    mute): each statement holds the single writer for one batch, then others get their
    turn. A batch short of `size` means none was left when it ran.
    """
    done = 0
    while True:
        batch = write_batch()
        done += batch
        if batch < size:
            return done


def until_short_in_halves(
    write_slice: Callable[[int, int], int], low: int, high: int, size: int = WRITE_BATCH
) -> int:
    """Run `write_slice(lo, hi)` (one bounded write statement over the rows stamped in
    [lo, hi) that does at most `size` of them and says how many it did) until every part of
    [low, high) comes back short; the rows done in all. A full batch splits its slice in
    halves, done in turn, lowest first.

    For work whose done rows stay in the index range the statement walks (anomalies muted
    are still anomalies): repeating one statement over the whole range (until_short) walks
    every row done before it again, N rows N / size statements of up to N rows each. Split
    where they are dense, a statement walks its own slice: the rows done in it by its
    ancestors (a batch each, halved at each split) and the ones it does.
    """
    done = 0
    todo = [(low, high)]
    while todo:
        lo, hi = todo.pop()
        batch = write_slice(lo, hi)
        done += batch
        if batch >= size:  # maybe more in [lo, hi): its halves (or itself, a millisecond)
            middle = lo + (hi - lo) // 2
            todo += [(middle, hi), (lo, middle)] if hi - lo > 1 else [(lo, hi)]
    return done


def new_node(owner_id: str, **fields: Any) -> dict[str, Any]:
    """The parameters of a statement creating a node for an owner: a fresh $id and
    $created_at (now), beside the node's own fields."""
    return {"owner_id": owner_id, "id": new_id(), "created_at": now_ms(), **fields}


def time_range(start_ms: int | None, end_ms: int | None) -> dict[str, int]:
    """$start and $end of a window start <= timestamp < end; None is an open end."""
    return {
        "start": MIN_MS if start_ms is None else start_ms,
        "end": MAX_MS if end_ms is None else end_ms,
    }


@dataclass(frozen=True)
class KeysetPage:
    """A page of a metric's rows (readings, anomalies) in (timestamp, id) order: of the
    window start <= timestamp < end (epoch ms; None: open), `size` rows strictly after the
    key `after` of the last row seen (None: the first page)."""

    start_ms: int | None
    end_ms: int | None
    size: int
    after: PageKey | None = None


def keyset_page(metric_id: str, page: KeysetPage) -> dict[str, Any]:
    """The parameters of a keyset page query (LIST_READINGS_AFTER, LIST_ANOMALIES): the
    index range starts at the `after` key's timestamp. No `after` is the first page:
    ($start, "") skips nothing, as every id is above ""."""
    bounds = time_range(page.start_ms, page.end_ms)
    after_ms, after_id = (bounds["start"], "") if page.after is None else page.after
    return {
        "metric_id": metric_id,
        **bounds,
        "start": max(bounds["start"], after_ms),
        "after_timestamp": after_ms,
        "after_id": after_id,
        "limit": page.size,
    }
