"""Exact conversions between datetimes and the graph's epoch milliseconds.

`common.models.to_epoch_ms` goes through a float and truncates, so about one millisecond
value in 150 comes back one lower (1700000000.001 s × 1000 = 1699999999999.9998). A
window bound one millisecond off includes or drops a reading, so the job code converts
with integer arithmetic, and hands the store bounds that convert right either way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
# A quarter millisecond past the bound: truncating, flooring and rounding all give the bound.
BOUND_NUDGE = timedelta(microseconds=250)


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of `moment` (floored), exactly; naive means UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // ONE_MS


def bound_at(ms: int) -> datetime:
    """A datetime that the graph store reads as exactly `ms`, for window bounds."""
    return EPOCH + ms * ONE_MS + BOUND_NUDGE
