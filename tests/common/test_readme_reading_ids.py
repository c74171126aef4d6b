"""The README's ids of readings sent without one are the ids the API makes for them (issue
21, walkthrough 7: a sample id used a 2024 epoch beside a reading stamped 2026)."""

from __future__ import annotations

import re
from datetime import datetime

from common.epoch import to_epoch_ms
from common.ids import reading_id
from tests.support import ROOT

README = (ROOT / "README.md").read_text()
MADE_ID = r"\d{13}:[0-9.e+-]+"  # an id made from a time (epoch ms) and a value


def test_ids_the_readme_shows_are_made_from_the_readings_it_shows() -> None:
    sent = {
        reading_id(to_epoch_ms(datetime.fromisoformat(at)), float(value))
        for value, at in re.findall(r'\{"value": ([0-9.]+), "timestamp": "([^"]+)"\}', README)
    }
    # In the examples' answers: "ids": [...] and the messages that name a reading.
    answered = re.findall(rf'"({MADE_ID})"', README) + re.findall(rf"id '({MADE_ID})'", README)
    assert answered, "the README shows no made id: this test is looking in the wrong place"
    assert set(answered) <= sent


def test_the_ids_the_prose_gives_as_examples_are_made_as_it_says() -> None:
    # "(`1795600800000:42.5` for 42.5 at 2026-11-25T10:00:00Z)"
    examples = re.findall(rf"`({MADE_ID})` for ([0-9.]+) at (\S+Z)\)", README)
    assert examples
    for made, value, at in examples:
        assert reading_id(to_epoch_ms(datetime.fromisoformat(at)), float(value)) == made
