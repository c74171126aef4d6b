"""The compacted form of a metric's older readings: a run of readings as one chunk, its
columns compressed. Pure: columns in, text out, and back; no I/O.

A chunk holds up to a few thousand readings of one metric in (timestamp, id) order, as
three text properties of a `ReadingChunk` node (FalkorDB keeps strings, not bytes, so each
compressed column is text: base85, a quarter more than its bytes where base64 is a third
more; Neo4j stores the same text):

- `times`: the int64 epoch-ms timestamps through pcodec, which finds a constant interval
  and delta orders itself (a regular series costs almost nothing per reading);
- `vals`: the float64 values through pcodec, which finds decimal and multiplier structure
  (a counter, or values with a few decimals, cost one or two bytes);
- `ids`: None when every reading has the id a reading sent without one gets
  (`common.ids.reading_id`, made from its timestamp and value), so such ids cost nothing;
  otherwise per reading a template (its id with the last run of digits cut out, the
  templates listed once per chunk) and that number, so "host1-1732528800" or "r41", "r42"
  cost almost nothing either; an id that fits no template is kept whole.

Measured on the accuracy corpora's real series (tests/bench/bench_storage.py, chunk by
chunk): pcodec takes 2.32 bytes a reading for timestamps and values, Gorilla's
delta-of-delta and XOR encoding 4.12, zlib -9 of the time deltas and the values' bytes
2.60. As text, base85: 2.90 (base64 was 3.08).
"""

from __future__ import annotations

import base64
import itertools
import json
import math
import re
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from pcodec import ChunkConfig, standalone

from common.ids import reading_id
from common.metrics.models import ReadingSeries, take

# Readings a chunk holds once full: more compresses slightly better and costs fewer nodes,
# but compaction rewrites the metric's last, unfilled chunk as readings join it.
CHUNK_READINGS = 4096
# A late reading may grow a full chunk; past this it is cut in two.
CHUNK_READINGS_MAX = 2 * CHUNK_READINGS

_CONFIG = ChunkConfig()
# The last run of digits of an id, as a number when it reads back the same (no leading
# zero, at most 18 digits so that it fits an int64).
_NUMBERED = re.compile(r"(.*?)(0|[1-9][0-9]{0,17})([^0-9]*)", re.DOTALL)
_DERIVED = 0  # template index of an id made by reading_id
# Base85 as Python's base64.b85encode writes it (no quote or backslash in the alphabet),
# done with numpy: the standard library's takes milliseconds a chunk, a chart's budget.
_B85 = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~",
    dtype=np.uint8,
)
_B85_DIGITS = np.zeros(256, dtype=np.uint32)
_B85_DIGITS[_B85] = np.arange(85, dtype=np.uint32)
# A group of five digits is one big-endian uint32 (in range: base85 of four bytes).
_B85_PLACES = np.array([85**4, 85**3, 85**2, 85, 1], dtype=np.uint32)
# Marks a base85 column; one without it is base64, as chunks written before were ("!" is
# not in base64's alphabet).
_BASE85 = "!"


@dataclass(frozen=True)
class EncodedChunk:
    """A chunk as stored: its summary and its compressed columns."""

    first_ms: int
    last_ms: int
    count: int
    low: float
    high: float
    total: float | None  # the sum of the values; None if it overflows a float
    times: str
    vals: str
    ids: str | None


def encode_chunk(series: ReadingSeries, ids_derived: bool = False) -> EncodedChunk:
    """Compress readings (at least one, in (timestamp, id) order) into a chunk.

    `ids_derived`: the caller knows every id is the one reading_id makes (compaction of
    readings sent without ids onto a chunk that keeps none), so they are not made again to
    be checked, and `series.ids` is not read."""
    if len(series) == 0:
        raise ValueError("a chunk holds at least one reading")
    times = np.ascontiguousarray(series.timestamps_ms, dtype=np.int64)
    values = np.ascontiguousarray(series.values, dtype=np.float64)
    total = float(np.sum(values))
    return EncodedChunk(
        first_ms=int(times[0]),
        last_ms=int(times[-1]),
        count=len(series),
        low=float(np.min(values)),
        high=float(np.max(values)),
        total=total if math.isfinite(total) else None,
        times=_pack(standalone.simple_compress(times, _CONFIG)),
        vals=_pack(standalone.simple_compress(values, _CONFIG)),
        ids=None if ids_derived else encode_ids(series.ids, times, values),
    )


def cut(series: ReadingSeries, size: int) -> list[ReadingSeries]:
    """Readings in pieces of about `size` (at least one piece): a piece ends where the
    timestamp changes, so that no two chunks share a timestamp and chunks sort by their
    first one (and a reading's time names the one chunk that can hold its id)."""
    times = series.timestamps_ms
    bounds = [0]
    while len(series) - bounds[-1] > size:
        at = bounds[-1] + size
        # Past the readings that share the timestamp just before the cut (sorted: a run).
        same = times[at:] == times[at - 1]
        at += len(same) if same.all() else int(np.argmin(same))
        if at >= len(series):
            break
        bounds.append(at)
    bounds.append(len(series))
    return [take(series, slice(a, b)) for a, b in itertools.pairwise(bounds)]


def decode_times(times: str) -> np.ndarray:
    return _array(times, np.int64)


def decode_values(vals: str) -> np.ndarray:
    return _array(vals, np.float64)


def decode_chunk(times: str, vals: str, ids: str | None) -> ReadingSeries:
    timestamps = decode_times(times)
    values = decode_values(vals)
    return ReadingSeries(
        ids=decode_ids(ids, timestamps, values), timestamps_ms=timestamps, values=values
    )


def encode_ids(ids: list[str], times: np.ndarray, values: np.ndarray) -> str | None:
    """The ids column; None when every id is derived from its reading (reading_id)."""
    templates: dict[tuple[str, ...], int] = {}
    kinds = np.zeros(len(ids), dtype=np.int64)
    numbers = np.zeros(len(ids), dtype=np.int64)
    for i, (reading, ms, value) in enumerate(
        zip(ids, times.tolist(), values.tolist(), strict=True)
    ):
        if reading == reading_id(ms, value):
            continue
        match = _NUMBERED.fullmatch(reading)
        key: tuple[str, ...] = (reading,) if match is None else (match[1], match[3])
        kinds[i] = templates.setdefault(key, len(templates) + 1)
        if match is not None:
            numbers[i] = int(match[2])
    if not templates:
        return None
    listed = json.dumps([list(key) for key in templates], separators=(",", ":"))
    parts = (
        zlib.compress(listed.encode(), 9),
        standalone.simple_compress(kinds, _CONFIG),
        standalone.simple_compress(numbers, _CONFIG),
    )
    return _pack(b"".join(struct.pack("<I", len(part)) + part for part in parts))


def decode_ids(ids: str | None, times: np.ndarray, values: np.ndarray) -> list[str]:
    if ids is None:
        return [
            reading_id(ms, value) for ms, value in zip(times.tolist(), values.tolist(), strict=True)
        ]
    raw = unpack(ids)
    parts = []
    offset = 0
    while offset < len(raw):
        (size,) = struct.unpack_from("<I", raw, offset)
        parts.append(raw[offset + 4 : offset + 4 + size])
        offset += 4 + size
    templates = json.loads(zlib.decompress(parts[0]))
    kinds = _decompress(parts[1], np.int64).tolist()
    numbers = _decompress(parts[2], np.int64).tolist()
    out = []
    for kind, number, ms, value in zip(
        kinds, numbers, times.tolist(), values.tolist(), strict=True
    ):
        if kind == _DERIVED:
            out.append(reading_id(ms, value))
            continue
        template = templates[kind - 1]
        out.append(template[0] if len(template) == 1 else f"{template[0]}{number}{template[1]}")
    return out


def _pack(data: bytes) -> str:
    return _BASE85 + b85encode(data)


def unpack(text: str) -> bytes:
    """A column's bytes, from its text."""
    return b85decode(text[1:]) if text.startswith(_BASE85) else base64.b64decode(text)


def b85encode(data: bytes) -> str:
    """base64.b85encode(data), as text, at numpy's speed."""
    pad = -len(data) % 4
    words = np.frombuffer(data + bytes(pad), dtype=">u4").astype(np.uint64)
    digits = np.empty((len(words), 5), dtype=np.uint8)
    for place in range(4, -1, -1):
        digits[:, place] = words % 85
        words //= 85
    text = _B85[digits].tobytes()
    return text[: len(text) - pad].decode("ascii")


def b85decode(text: str) -> bytes:
    """base64.b85decode(text) for text b85encode wrote."""
    pad = -len(text) % 5
    raw = np.frombuffer(text.encode("ascii") + b"~" * pad, dtype=np.uint8)
    words = _B85_DIGITS[raw].reshape(-1, 5) @ _B85_PLACES
    data = words.astype(">u4").tobytes()
    return data[: len(data) - pad]


def _array(text: str, dtype: type[np.generic]) -> np.ndarray:
    return _decompress(unpack(text), dtype)


def _decompress(data: bytes, dtype: type[np.generic]) -> np.ndarray:
    array = standalone.simple_decompress(data)
    return np.zeros(0, dtype=dtype) if array is None else np.asarray(array, dtype=dtype)
