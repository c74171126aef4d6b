"""The one window rule, as the API's jobs ask it."""

from __future__ import annotations

from common.jobs.window import WindowRequest, detection_window

NEWEST = 1_700_000_000_000
NOW = NEWEST + 3_600_000


def window(**asked: int) -> tuple[int | None, int]:
    return detection_window(WindowRequest(**asked), NEWEST, NOW)


def test_nothing_asked_is_every_reading_up_to_just_after_the_newest() -> None:
    assert window() == (None, NEWEST + 1)


def test_seconds_alone_are_the_last_seconds_before_now_as_the_seed_meant() -> None:
    assert window(seconds=60) == (NOW - 60_000, NOW)


def test_seconds_count_back_from_an_end_or_on_from_a_start() -> None:
    assert window(end_ms=NEWEST, seconds=60) == (NEWEST - 60_000, NEWEST)
    assert window(start_ms=NEWEST - 5_000, seconds=60) == (NEWEST - 5_000, NEWEST + 55_000)


def test_start_and_end_are_kept_and_an_empty_window_is_not_refused_here() -> None:
    assert window(start_ms=5, end_ms=9) == (5, 9)
    assert window(start_ms=NEWEST - 10) == (NEWEST - 10, NEWEST + 1)
    assert window(start_ms=9, end_ms=5) == (9, 5)  # the job fails, saying so


def test_seconds_before_an_end_just_after_the_newest_reading() -> None:
    assert window(end_ms=NEWEST + 1, seconds=7 * 24 * 3600) == (
        NEWEST + 1 - 7 * 24 * 3600 * 1000,
        NEWEST + 1,
    )
