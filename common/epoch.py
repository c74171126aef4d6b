"""Time inside Neonomaly: integer epoch milliseconds; datetimes only at the API's edge.

Both graph engines index and compare 64-bit integers, Redis scores are numbers and the
detection library takes int64 arrays, so the core computes in milliseconds; the web
turns them into ISO 8601 datetimes (and back) where requests and answers cross. These
are the only conversions.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


def to_epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of `moment` (floored); a naive datetime is taken as UTC.

    Integer arithmetic on purpose: through a float, about one value in 150 comes back a
    millisecond low (1700000000.001 s * 1000 = 1699999999999.9998), and a window bound one
    millisecond off drops or adds a reading.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // ONE_MS


def from_epoch_ms(epoch_ms: int) -> datetime:
    return EPOCH + epoch_ms * ONE_MS


def optional_moment(epoch_ms: int | None) -> datetime | None:
    return None if epoch_ms is None else from_epoch_ms(epoch_ms)


def optional_ms(moment: datetime | None) -> int | None:
    return None if moment is None else to_epoch_ms(moment)


def now_ms() -> int:
    """The server's clock in epoch milliseconds (integer nanoseconds, never a float)."""
    return time.time_ns() // 1_000_000


def utc_now() -> datetime:
    return datetime.now(UTC)
