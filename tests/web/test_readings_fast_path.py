"""The readings' fast path (web.schemas.readings.sent_readings) against the model it stands
in for: on any list of readings it either declines (the model then validates) or gives
exactly what the model gives. The HTTP tests (test_readings_api, test_series_api,
test_hostile_inputs) pin the answers the API gives through both paths."""

from __future__ import annotations

import math
from typing import Any
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from web.routers import readings as readings_router
from web.schemas.readings import ReadingCreate, SentReadings, sent_readings

MODEL = TypeAdapter(list[ReadingCreate])

# Values, timestamps and ids as clients write them, good and bad, near every edge.
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.sampled_from([0, -0.0, 1e308, -1e308, 1.7976931348623157e308, 10**400, 2**53, 2**53 + 1]),
    st.sampled_from([True, False, None, "1.5", [1], {"v": 1}]),
)
DATES = st.sampled_from(
    [
        "2026-01-01",
        "1970-01-01",
        "1969-12-31",
        "2199-12-31",
        "2200-01-01",
        "2026-02-30",
        "0000-01-01",
    ]
)
TIMES = st.sampled_from(
    ["00:00:00", "23:59:59", "23:59:60", "24:00:00", "12:30:15.5", "12:30:15.123456",
     "12:30:15.1234567", "12:30", "12:30:15,5"]
)  # fmt: skip
ZONES = st.sampled_from(["", "Z", "z", "+00:00", "-05:30", "+23:59", "+24:00", "+0100", "+01"])
TIMESTAMPS = st.one_of(
    st.builds(lambda d, t, z, sep: f"{d}{sep}{t}{z}", DATES, TIMES, ZONES, st.sampled_from("T t")),
    st.sampled_from([None, "1700000000", 1700000000, "now", "", "2026-01-01"]),
)
IDS = st.one_of(
    st.none(),
    st.text(min_size=0, max_size=3),
    st.sampled_from(["x" * 200, "x" * 201, "a\x00b", "a\x9fb", "a\ud800b", "é", 7, ["a"]]),
)
READING = st.fixed_dictionaries(
    {"value": VALUES},
    optional={"timestamp": TIMESTAMPS, "id": IDS, "extra": st.just(1)},
)
READINGS = st.one_of(
    st.lists(READING, max_size=6),
    st.lists(st.sampled_from([None, 1, "x", []]), min_size=1, max_size=2),
)


def same(a: list[Any], b: list[Any]) -> bool:
    """Equal column by column; floats bit for bit (-0.0 is not 0.0 here)."""
    return len(a) == len(b) and all(
        type(x) is type(y)
        and (
            x == y
            if not isinstance(x, float)
            else math.copysign(1, x) == math.copysign(1, y) and x == y
        )
        for x, y in zip(a, b, strict=True)
    )


def check(raw: list[Any]) -> None:
    fast = sent_readings(raw)
    try:
        model = SentReadings.of(MODEL.validate_python(raw))
    except ValidationError:
        assert fast is None, f"the fast path took readings the model refuses: {raw!r}"
        return
    if fast is None:
        return  # the model validates these: what it gives is what the API stores
    assert same(fast.ids, model.ids)
    assert same(fast.timestamps_ms, model.timestamps_ms)
    assert same(fast.values, model.values)


@settings(max_examples=3000, deadline=None)
@given(READINGS)
def test_the_fast_path_declines_or_gives_what_the_model_gives(raw: list[Any]) -> None:
    check(raw)


GOOD = {"value": 1.5, "timestamp": "2026-01-01T00:00:00Z", "id": "a"}
EDGES = [
    ("id", "a\ud800b"), ("id", "a\x85b"), ("id", "x" * 201), ("id", ""), ("id", 7),
    ("value", 10**400), ("value", 2**53 + 1), ("value", float("nan")), ("value", True),
    ("value", 1.7976931348623157e308), ("timestamp", "2026-01-01T00:00:00.1234567Z"),
    ("timestamp", "1969-12-31T23:59:59.9995Z"), ("timestamp", "2200-01-01T00:00:00Z"),
    ("timestamp", "2026-01-01t00:00:00Z"), ("timestamp", "9999-12-31T23:00:00-05:00"),
]  # fmt: skip


def test_each_edge_alone_beside_good_readings() -> None:
    for field, edge in EDGES:
        check([GOOD, {**GOOD, field: edge}])


def test_what_clients_send_takes_the_fast_path() -> None:
    raw = [
        {"value": 1.5, "timestamp": "2026-01-01T00:00:00Z", "id": "a"},
        {"value": 2, "timestamp": "2026-01-01T00:00:01.250+01:00"},
        {"value": -0.5, "timestamp": "2026-01-01T00:00:02.123456"},
        {"value": 0.0},
    ]
    fast = sent_readings(raw)
    assert fast is not None
    assert fast.values == [1.5, 2.0, -0.5, 0.0] and type(fast.values[1]) is float
    assert fast.timestamps_ms == [1767225600000, 1767222001250, 1767225602123, None]
    assert fast.ids == ["a", None, None, None]


# --- a request's short series, their readings checked as one column ----------------------
# (web.routers.readings._fast_short): the request's answer is the model's, series by series.
NAMINGS = st.sampled_from(
    [
        {"metric_id": "a" * 24},
        {"metric_id": ""},
        {"service_id": "b" * 24, "metric_name": "cpu"},
        {"service_name": "web", "metric_name": "cpu", "labels": {"host": "h1"}},
        {"service_name": "web", "metric_name": "x" * 101},
        {"service_name": "web"},
        {"metric_id": "a" * 24, "metric_name": "cpu"},
        {"service_name": "web", "metric_name": "cpu", "labels": {"": "v"}},
    ]
)
SERIES = st.builds(
    lambda naming, readings: {**naming, "readings": readings},
    NAMINGS,
    st.one_of(st.lists(READING, max_size=3), st.just("x")),
) | st.sampled_from([None, 1, [], {"readings": [GOOD]}, {"metric_id": "a" * 24}])


def answers(raw: list[Any]) -> tuple[dict[int, Any], dict[int, str]]:
    """What _validated makes of a request's series: each valid one's fields but its readings
    (which the columns stand for) and columns; each invalid one's problems."""
    valid, invalid = readings_router._validated(raw)
    return {
        index: (
            series.model_dump(exclude={"readings"}),
            tuple(map(repr, (columns.ids, columns.timestamps_ms, columns.values))),
        )
        for index, (series, columns) in valid.items()
    }, invalid


@settings(max_examples=1500, deadline=None)
@given(st.lists(SERIES, min_size=1, max_size=5))
def test_short_series_together_answer_what_the_model_answers(raw: list[Any]) -> None:
    together = answers(raw)
    with patch.object(readings_router, "_fast_short", lambda raw, indexes: None):
        by_model = answers(raw)
    assert together == by_model


def test_a_fleets_series_take_the_fast_path_together() -> None:
    raw = [{"metric_id": f"{m:024d}", "readings": [{**GOOD, "id": f"r{m}"}]} for m in range(1_000)]
    short = readings_router._fast_short(raw, list(range(len(raw))))
    assert short is not None and len(short) == 1_000
    assert short[999][1].ids == ["r999"] and short[0][1].timestamps_ms == [1767225600000]
