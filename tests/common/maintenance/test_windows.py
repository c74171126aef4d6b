"""What a maintenance window covers: one-off spans, weekly spans in a named zone across
daylight-saving changes, overnight spans, and the checks on what a person asks for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time

import numpy as np
import pytest

from common.epoch import from_epoch_ms, to_epoch_ms
from common.errors import InvalidRequestError
from common.maintenance import service
from common.maintenance.models import MaintenanceWindow, WeeklySchedule, WindowSpec
from common.maintenance.service import check, covered, metric_spans, spans


def ms(text: str) -> int:
    return to_epoch_ms(datetime.fromisoformat(text).replace(tzinfo=UTC))


def window(
    weekly: WeeklySchedule | None = None,
    start: str | None = None,
    end: str | None = None,
    window_id: str = "w1",
) -> MaintenanceWindow:
    moment = from_epoch_ms(0)
    return MaintenanceWindow(
        id=window_id,
        service_id=None,
        metric_id=None,
        start=None if start is None else from_epoch_ms(ms(start)),
        end=None if end is None else from_epoch_ms(ms(end)),
        weekly=weekly,
        reason="test",
        created_at=moment,
        updated_at=moment,
    )


def utc(span: tuple[int, int]) -> tuple[str, str]:
    return tuple(from_epoch_ms(edge).strftime("%m-%d %H:%M") for edge in span)  # type: ignore[return-value]


SUNDAY_NIGHT_BERLIN = WeeklySchedule(
    days=["sun"], start_time=time(2), end_time=time(4), time_zone="Europe/Berlin"
)
SUNDAY_NIGHT_BERLIN_WINDOW = window(SUNDAY_NIGHT_BERLIN)


def test_one_off_window_is_its_span_clipped_to_the_range() -> None:
    outage = window(start="2026-03-02T10:00", end="2026-03-02T12:00")
    assert spans(outage, ms("2026-03-02T11:00"), ms("2026-03-03T00:00")) == [
        (ms("2026-03-02T11:00"), ms("2026-03-02T12:00"))
    ]
    assert spans(outage, ms("2026-03-02T12:00"), ms("2026-03-03T00:00")) == []


def test_weekly_window_keeps_local_time_across_both_dst_changes() -> None:
    # Europe/Berlin: CET (UTC+1) until 2026-03-29 02:00, CEST (UTC+2) until 2026-10-25 03:00.
    found = spans(SUNDAY_NIGHT_BERLIN_WINDOW, ms("2026-03-20T00:00"), ms("2026-04-10T00:00"))
    assert [utc(s) for s in found] == [
        ("03-22 01:00", "03-22 03:00"),  # CET
        ("03-29 01:00", "03-29 02:00"),  # the night of the change: 02:00 local does not exist
        ("04-05 00:00", "04-05 02:00"),  # CEST: an hour earlier in UTC
    ]
    autumn = spans(SUNDAY_NIGHT_BERLIN_WINDOW, ms("2026-10-20T00:00"), ms("2026-11-03T00:00"))
    assert [utc(s) for s in autumn] == [
        ("10-25 00:00", "10-25 03:00"),  # 02:00 CEST (the first 02:00) to 04:00 CET
        ("11-01 01:00", "11-01 03:00"),
    ]


def test_covered_timestamps_follow_the_local_schedule() -> None:
    timestamps = np.array(
        [
            ms("2026-03-22T00:30"),  # 01:30 CET: before the window
            ms("2026-03-22T01:30"),  # 02:30 CET: inside
            ms("2026-04-05T00:30"),  # 02:30 CEST: inside (01:30 in winter's UTC terms)
            ms("2026-04-05T02:30"),  # 04:30 CEST: after it (inside at winter's offset)
            ms("2026-04-06T01:30"),  # a Monday
        ]
    )
    assert covered([SUNDAY_NIGHT_BERLIN_WINDOW], timestamps).tolist() == [
        False,
        True,
        True,
        False,
        False,
    ]


def test_overnight_window_runs_into_the_next_day_and_is_bounded_by_start_and_end() -> None:
    nightly = window(
        WeeklySchedule(days=["fri"], start_time=time(23), end_time=time(1), time_zone="UTC"),
        start="2026-03-01T00:00",
        end="2026-03-13T00:30",
    )
    found = spans(nightly, ms("2026-02-01T00:00"), ms("2026-04-01T00:00"))
    # Fri 27 Feb is before its start; Fri 13 Mar's night starts after its end.
    assert [utc(s) for s in found] == [("03-06 23:00", "03-07 01:00")]
    inside = covered([nightly], np.array([ms("2026-03-07T00:59"), ms("2026-03-07T01:00")]))
    assert inside.tolist() == [True, False]


def test_spans_of_several_windows_come_in_time_order_and_are_capped() -> None:
    daily = WeeklySchedule(
        days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        start_time=time(0),
        end_time=time(0),  # the whole day
        time_zone="UTC",
    )
    one_off = window(start="2026-03-02T10:00", end="2026-03-02T11:00", window_id="w0")
    found, truncated = metric_spans(
        [window(daily), one_off], ms("2026-03-01T00:00"), ms("2026-03-04T00:00"), limit=3
    )
    assert [(utc(span), w.id) for span, w in found] == [
        (("03-01 00:00", "03-02 00:00"), "w1"),
        (("03-02 00:00", "03-03 00:00"), "w1"),
        (("03-02 10:00", "03-02 11:00"), "w0"),
    ]
    assert truncated


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (WindowSpec("r", 1, 2, service_id="s", metric_id="m"), "not both"),
        (WindowSpec("r", start_ms=1), "needs start and end"),
        (WindowSpec("r", 2, 1), "end must be after start"),
        (
            WindowSpec("r", weekly=SUNDAY_NIGHT_BERLIN.model_copy(update={"days": []})),
            "at least one day",
        ),
        (
            WindowSpec("r", weekly=SUNDAY_NIGHT_BERLIN.model_copy(update={"days": ["sun", "sun"]})),
            "named twice",
        ),
        (
            WindowSpec(
                "r", weekly=SUNDAY_NIGHT_BERLIN.model_copy(update={"time_zone": "Mars/Base"})
            ),
            "not an IANA time zone",
        ),
        (
            WindowSpec("r", weekly=SUNDAY_NIGHT_BERLIN.model_copy(update={"time_zone": "../etc"})),
            "not an IANA time zone",
        ),
    ],
)
def test_check_says_what_to_fix(spec: WindowSpec, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        check(spec)


def test_weekly_window_needs_no_start_or_end() -> None:
    check(WindowSpec("backups", weekly=SUNDAY_NIGHT_BERLIN))


def test_many_windows_cover_what_each_covers_and_an_edit_is_seen_at_once() -> None:
    """covered() merges the windows' spans once for many metrics (a sweep's batch asks for
    each with the same windows): what it answers is what the windows cover one by one,
    overlapping, overnight, bounded or across a DST change; a window edited in place (same
    id, same updated_at) is answered as it is now."""
    rng = np.random.default_rng(7)
    zones = ["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"]
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    hours = rng.integers(0, 24, size=12).tolist()
    windows = [
        window(
            WeeklySchedule(
                days=sorted(set(rng.choice(days, size=int(rng.integers(1, 4))).tolist())),
                start_time=time(hour, 30),
                end_time=time((hour + int(rng.integers(1, 4))) % 24, 15),  # maybe overnight
                time_zone=zones[k % len(zones)],
            ),
            start="2026-03-20T00:00" if k % 5 == 0 else None,
            window_id=f"w{k}",
        )
        for k, hour in enumerate(hours)
    ] + [window(start="2026-03-28T10:00", end="2026-03-30T11:00", window_id="one-off")]
    timestamps = np.arange(ms("2026-03-18T00:00"), ms("2026-04-03T00:00"), 7 * 60_000)
    one_by_one = np.zeros(len(timestamps), dtype=bool)
    for each in windows:
        for low, high in spans(each, int(timestamps[0]), int(timestamps[-1]) + 1):
            one_by_one |= (low <= timestamps) & (timestamps < high)
    assert 0 < one_by_one.sum() < len(timestamps)
    for first in range(0, len(timestamps), 500):  # as a batch asks, metric by metric
        part = timestamps[first : first + 500]
        assert covered(windows, part).tolist() == one_by_one[first : first + 500].tolist()

    night = window(SUNDAY_NIGHT_BERLIN)
    sunday = np.array([ms("2026-03-01T01:30"), ms("2026-03-01T04:30")])
    assert covered([night], sunday).tolist() == [True, False]
    later = SUNDAY_NIGHT_BERLIN.model_copy(update={"start_time": time(5), "end_time": time(6)})
    edited = night.model_copy(update={"weekly": later})  # same id and updated_at
    assert covered([edited], sunday).tolist() == [False, True]


def count_spans_worked_out(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count the weekly spans worked out from here on (service._weekly_span, a day each);
    the count so far, when called."""
    worked = 0
    weekly_span = service._weekly_span

    def counted(*args: object) -> tuple[int, int] | None:
        nonlocal worked
        worked += 1
        return weekly_span(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_weekly_span", counted)
    return lambda: worked


def test_spans_of_many_windows_over_centuries_cost_about_the_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chart's spans, `limit` of them, from an owner's daily windows over 1970-2200: the
    spans worked out are about the page, not `limit` of every window (1,000 windows x
    10,000 spans held a web process for minutes), and the page is the same as the first
    `limit` of all of them in (time, window id) order."""
    worked = count_spans_worked_out(monkeypatch)
    daily = [
        window(
            WeeklySchedule(
                days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                start_time=time(k % 24),
                end_time=time((k + 1) % 24),
                time_zone="Europe/Berlin",
            ),
            start="2026-12-01T00:00",
            window_id=f"w{k:02d}",
        )
        for k in range(30)
    ]
    page, more = metric_spans(daily, ms("1970-01-01T00:00"), ms("2199-12-31T00:00"), 100)
    assert more and len(page) == 100
    assert worked() < 400, worked()
    every = sorted(
        (span, each.id)
        for each in daily
        for span in spans(each, ms("2026-12-01T00:00"), ms("2026-12-10T00:00"))
    )
    assert [(span, each.id) for span, each in page] == every[:100]


def test_readings_decades_apart_cost_their_days_not_the_decades_between(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A job over a metric with a reading of 1970 and some of today asks which are in an
    owner's weekly windows: the windows' spans are worked out on the days around the
    readings (before: on each of the 20,000 days between, for every window: minutes of a
    job worker for 100 daily windows), and the answer is the same."""
    worked = count_spans_worked_out(monkeypatch)
    daily = [
        window(
            WeeklySchedule(
                days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                start_time=time(hour),
                end_time=time(hour, 30),
                time_zone="UTC",
            ),
            window_id=f"w{hour}",
        )
        for hour in (0, 10, 23)
    ]
    timestamps = np.array(
        [
            ms("1970-01-01T00:10"),
            ms("1970-01-01T01:00"),
            ms("2026-12-07T10:29"),
            ms("2026-12-07T23:45"),
        ]
    )
    assert covered(daily, timestamps).tolist() == [True, False, True, False]
    assert worked() < 100, worked()
