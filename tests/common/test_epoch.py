from datetime import UTC, datetime, timedelta

from common.epoch import from_epoch_ms, to_epoch_ms


def test_epoch_ms_round_trips_every_millisecond_exactly() -> None:
    # Through a float, 1700000000.001 s * 1000 gives ...999.9998 and truncates a ms low.
    base = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    for ms in range(2000):
        moment = base + timedelta(milliseconds=ms)
        assert to_epoch_ms(moment) == 1_700_000_000_000 + ms
        assert from_epoch_ms(to_epoch_ms(moment)) == moment


def test_naive_is_utc_and_sub_millisecond_is_floored() -> None:
    assert to_epoch_ms(datetime(1970, 1, 1, 0, 0, 1)) == 1000
    assert to_epoch_ms(datetime(1970, 1, 1, 0, 0, 0, 999, tzinfo=UTC)) == 0
