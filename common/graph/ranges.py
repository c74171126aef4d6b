"""Parameters every repository passes the same way: time ranges, limits, keyset pages."""

from __future__ import annotations

from typing import Any

# Open ends of a time range, as epoch ms (both engines compare 64-bit integers).
MIN_MS = -(2**62)
MAX_MS = 2**62
# "No limit" for a LIMIT clause: FalkorDB returns nothing for a LIMIT past 32 bits.
NO_LIMIT = 2**31 - 1

# The key of the last row a page held: (epoch ms, id).
PageKey = tuple[int, str]


def time_range(start_ms: int | None, end_ms: int | None) -> dict[str, int]:
    """$start and $end of a window start <= timestamp < end; None is an open end."""
    return {
        "start": MIN_MS if start_ms is None else start_ms,
        "end": MAX_MS if end_ms is None else end_ms,
    }


def keyset_page(
    metric_id: str,
    start_ms: int | None,
    end_ms: int | None,
    limit: int,
    after: PageKey | None,
) -> dict[str, Any]:
    """The parameters of a keyset page query (LIST_READINGS_AFTER, LIST_ANOMALIES): rows
    strictly after `after` = (epoch ms, id), the index range starting at its timestamp. No
    `after` is the first page: ($start, "") skips nothing, as every id is above ""."""
    bounds = time_range(start_ms, end_ms)
    after_ms, after_id = (bounds["start"], "") if after is None else after
    return {
        "metric_id": metric_id,
        **bounds,
        "start": max(bounds["start"], after_ms),
        "after_timestamp": after_ms,
        "after_id": after_id,
        "limit": limit,
    }
