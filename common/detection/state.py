"""The default detector's settings and what it carries from one reading to the next.

`DetectorState` is everything the detector (`adaptive`) needs to judge the next readings
of a series as if it had judged the whole series in one pass: compact (at most MAX_BYTES,
16 KB, serialised; 12-15 KB for a seasonal metric, less once the season search is over),
versioned, and opaque to callers, who keep its bytes (`to_bytes` / `from_bytes`) and hand
it back with the readings that came since. It holds:

- the last readings the level forecaster and an event's description need (`recent`,
  `recent_expected`: the level window, or BASELINE readings if more), and each
  forecaster's windowed error sums (`sums`, a ring per power of two up to the longest
  horizon) with the current block's evidence (`pending`);
- the tail summaries (`tails.Tails`: two windows of log-binned counts per tail, a few
  hundred bytes each, and its first magnitudes while it warms up);
- the seasonal forecaster (`seasonal.Season`: a bounded grid of recent readings, a
  downsampled one of all readings for inferring the season, the fit in use);
- the drift look's block sums of its errors and its long-memory scale (a few hundred
  bytes: `adaptive`, the drift look);
- the forecaster choice's block sums, the data resolution's chunk minima and maxima,
  and the last alarm (the quiet time) with the level before it, where the level window
  starts, and the reading look's evidence held back since the alarm until the detector
  knows whether the level moved (at most 32 readings' worth: `adaptive`, recovery).

The bytes: MAGIC, the format VERSION, the settings, the fields, and a CRC-32 of all of
it. Bytes that are corrupt or from another version, or a state built with other
settings (`from_bytes(..., settings=)`), raise StateInvalid: the caller rebuilds the
state from the series' history.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from array import array
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from common.detection import seasonal
from common.detection.result import DetectionError
from common.detection.tails import SPAN, Tails

MAGIC = b"NNDS"
# Bumped whenever the format or the algorithm changes: a state from another version would
# judge differently from a rebuild.
VERSION = 5
# The most a state takes serialised, for any series (tests check the worst shapes).
MAX_BYTES = 16 * 1024
NEVER = -(2**62)  # no alarm yet
# The detector's block of readings (`adaptive.BLOCK`): the drift look's sums are per block.
DRIFT_BLOCK = 16


@dataclass(frozen=True)
class AdaptiveSettings:
    """The default detector's parameters; one set for every series (`adaptive` module doc).

    Measured on the labelled corpus (README, "How good is detection"), not fitted per
    series: each is a property of what "unusual" means, not of a file.
    """

    # Alarm when behaviour this unusual has at most this probability: the share of
    # readings that alarm on data that behaves as its past did (an upper bound).
    sensitivity: float = 3e-4
    # Readings after an alarm that cannot alarm again: one incident, one alarm. Longer than
    # SETTLE (32, the level decision after an alarm), short enough that the next incident
    # of a metric with one every couple of days of hourly readings alarms on its own
    # (35 against 50: NAB 71.7 -> 72.6, cloud 34.9 -> 36.0; 20-30 and 40 lost on NAB).
    quiet: int = 35
    # The level forecaster's median window: a level shift is followed within half of it.
    level_window: int = 120
    # Readings of recent error over which the two forecasters are compared (in whole
    # blocks of 16 before the current one: 288 to 303 readings for 300).
    choice_window: int = 300
    # Means of the signed error over these many readings (1: the reading itself).
    horizons: tuple[int, ...] = (1, 4, 32)
    # Means of the absolute error over these many readings: the spread widening.
    spread_horizons: tuple[int, ...] = (64,)
    # The mean signed error over about this many readings (whole blocks of 16: the last
    # drift_horizon / 16 - 1 before the current one and the current one's so far; 0: no
    # such look): a level that creeps or a temperature climbing for hours, which the level
    # forecaster follows a little behind and the shorter looks see only as noise.
    drift_horizon: int = 256
    # Past values each tail is fitted on: a week of 5-minute readings (`tails`: the
    # current window of this many and the previous one fading out).
    history: int = 2000
    # Above this quantile of past magnitudes, the exponential tail; below, the empirical.
    tail_quantile: float = 0.9

    def check(self) -> None:
        if not (0 < self.sensitivity < 1 - self.tail_quantile):
            raise DetectionError(
                f"sensitivity must be a probability above 0 and below {1 - self.tail_quantile:g} "
                f"(the share of readings alarming on normal data), got {self.sensitivity}"
            )
        if self.quiet < 0:
            raise DetectionError(f"quiet must be 0 or more readings, got {self.quiet}")
        if self.level_window < 2:
            raise DetectionError(f"window must be at least 2 readings, got {self.level_window}")
        drift = self.drift_horizon
        if drift < 0 or drift % DRIFT_BLOCK or drift == DRIFT_BLOCK:
            raise DetectionError(
                f"drift_horizon must be 0 or a multiple of {DRIFT_BLOCK} readings from "
                f"{2 * DRIFT_BLOCK}, got {self.drift_horizon}"
            )
        if 1 not in self.horizons or min(self.horizons + self.spread_horizons) < 1:
            raise DetectionError("horizons must include 1 (the reading itself), all at least 1")

    def as_params(self) -> dict[str, object]:
        return {
            "sensitivity": self.sensitivity,
            "quiet": self.quiet,
            "level_window": self.level_window,
            "choice_window": self.choice_window,
            "horizons": list(self.horizons),
            "spread_horizons": list(self.spread_horizons),
            "drift_horizon": self.drift_horizon,
            "history": self.history,
            "tail_quantile": self.tail_quantile,
        }


class StateInvalid(DetectionError):  # noqa: N818 - the name the fleet's callers use
    """The bytes are not a state this detector can continue: corrupt, from another format
    version, or built with other settings. Rebuild it from the series' history."""


_SETTINGS = struct.Struct("<dqqqqdqBB")


def _settings_bytes(settings: AdaptiveSettings, period: int | None) -> bytes:
    head = _SETTINGS.pack(
        settings.sensitivity,
        settings.quiet,
        settings.level_window,
        settings.choice_window,
        settings.history,
        settings.tail_quantile,
        0 if period is None else period,
        len(settings.horizons),
        len(settings.spread_horizons),
    )
    looks = np.asarray(settings.horizons + settings.spread_horizons, dtype="<i8")
    return head + struct.pack("<q", settings.drift_horizon) + looks.tobytes()


def settings_key(settings: AdaptiveSettings, period: int | None = None) -> str:
    """Fingerprint of the settings (and given period) a state is built with."""
    return hashlib.blake2b(_settings_bytes(settings, period), digest_size=8).hexdigest()


@dataclass
class DetectorState:
    """What the default detector carries between calls (module doc); opaque to callers
    but for the three fields below. Build one with `adaptive.new_state`."""

    settings: AdaptiveSettings
    period: int | None
    settings_key: str  # fingerprint of the settings it was built with
    readings_seen: int = 0
    last_timestamp_ms: int | None = None  # the newest reading judged
    # Read and written reading by reading: arrays of plain numbers, cheap to index.
    recent: array[float] = field(default_factory=lambda: array("d"))
    recent_expected: array[float] = field(default_factory=lambda: array("d"))
    sums: array[float] = field(default_factory=lambda: array("d"))  # windowed error sums
    pending: array[float] = field(default_factory=lambda: array("f"))  # this block's evidence
    # The level's reading-look evidence since an alarm, until it is known whether the level
    # moved (`adaptive`, recovery): a shift's own errors must not widen the band after it.
    held: array[float] = field(default_factory=lambda: array("f"))
    partial_sum: array[float] = field(default_factory=lambda: array("d", [0.0, 0.0]))
    partial_count: array[int] = field(default_factory=lambda: array("q", [0, 0]))
    # Per forecaster, the current block's sum of signed errors (NaN once one had no
    # forecast) and the sums of the blocks before it that the drift look reads.
    # (Four rows: the signed errors of each forecaster, then their magnitudes.)
    partial_drift: array[float] = field(default_factory=lambda: array("d", [0.0] * 4))
    drift_sums: np.ndarray = field(default_factory=lambda: np.zeros((4, 0)))
    # Per forecaster, the drift look's mean square (one value a block, over a long memory:
    # `adaptive`, DRIFT_MEMORY) and the blocks it has seen; 1 from an alarm the drift look
    # raised until that look is unremarkable again (one drift, one alarm).
    drift_square: array[float] = field(default_factory=lambda: array("d", [0.0] * 4))
    drift_mean: array[float] = field(default_factory=lambda: array("d", [0.0] * 4))
    drift_blocks: array[int] = field(default_factory=lambda: array("q", [0, 0]))
    drifting: int = 0
    # 1 once the level decision let the held evidence join the reading look's tail: it
    # joins at the block's end (`adaptive._end_block`), so that the whole block is judged
    # from the tails it started with, however its readings are split between advances.
    held_joins: int = 0
    last_alarm: int = NEVER
    # The level before the last alarm, and the first reading of the level window (after a
    # level shift it restarts at the shift: `adaptive`, recovery).
    alarm_level: float = math.nan
    level_from: int = 0
    # The event's peak -log probability so far (an alarm inside its quiet time must exceed
    # it several times: `adaptive`, ESCALATE).
    alarm_peak: float = 0.0
    # Read and written once a block.
    choice_sums: np.ndarray = field(default_factory=lambda: np.zeros((2, 0)))
    choice_counts: np.ndarray = field(default_factory=lambda: np.zeros((2, 0), dtype=np.int64))
    floor_mins: np.ndarray = field(default_factory=lambda: np.zeros(0))
    floor_maxes: np.ndarray = field(default_factory=lambda: np.zeros(0))
    chunk_min: float = math.inf
    chunk_max: float = 0.0
    floor: float = 0.0
    tails: Tails = field(default_factory=lambda: Tails.empty(0))
    season: seasonal.Season = field(default_factory=seasonal.Season)

    def copy(self) -> DetectorState:
        """A copy whose arrays the detector may replace without touching this one's."""
        copied = DetectorState(**{name: getattr(self, name) for name in _FIELD_NAMES})
        for name in _READINGS:
            setattr(copied, name, getattr(self, name)[:])
        copied.tails = self.tails.copy()
        copied.season = self.season.copy()
        return copied

    def to_bytes(self) -> bytes:
        return _encode(self)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        settings: AdaptiveSettings | None = None,
        period: int | None = None,
    ) -> DetectorState:
        """The state in `data`; StateInvalid if corrupt or from another version, and with
        `settings`, if built with other settings or another given `period` (None: inferred)."""
        state = _decode(data)
        if settings is not None and state.settings_key != settings_key(settings, period):
            raise StateInvalid(
                "the state was built with other detector settings: rebuild it from the history"
            )
        return state


_FIELD_NAMES = tuple(DetectorState.__dataclass_fields__)
_READINGS = (
    "recent",
    "recent_expected",
    "sums",
    "pending",
    "held",
    "partial_sum",
    "partial_count",
    "partial_drift",
    "drift_square",
    "drift_mean",
    "drift_blocks",
)

# The bytes' layout. Each part is one object of the state: (its attribute path, its scalar
# fields with their struct codes, its array fields with their types: a one-letter
# array.array type code, or a numpy dtype with the number of rows: -1 one per tail, -2
# two per tail, its two windows).
_PARTS: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str, int], ...]], ...] = (
    (
        "",
        (
            ("readings_seen", "q"),
            ("last_timestamp_ms", "q"),
            ("last_alarm", "q"),
            ("alarm_level", "d"),
            ("level_from", "q"),
            ("alarm_peak", "d"),
            ("drifting", "q"),
            ("held_joins", "q"),
            ("chunk_min", "d"),
            ("chunk_max", "d"),
            ("floor", "d"),
        ),
        (
            ("recent", "d", 0),
            ("recent_expected", "d", 0),
            ("sums", "d", 0),
            ("pending", "f", 0),
            ("held", "f", 0),
            ("partial_sum", "d", 0),
            ("partial_count", "q", 0),
            ("partial_drift", "d", 0),
            ("drift_square", "d", 0),
            ("drift_mean", "d", 0),
            ("drift_blocks", "q", 0),
            ("choice_sums", "<f8", 2),
            ("drift_sums", "<f8", 4),
            ("choice_counts", "<i8", 2),
            ("floor_mins", "<f8", 0),
            ("floor_maxes", "<f8", 0),
        ),
    ),
    (
        "tails",
        (),
        (
            ("counts", "<f2", -2),
            ("masses", "<f4", -2),
            ("anchor", "<i4", 0),
            ("seen", "<i8", 0),
            ("threshold", "<f8", 0),
            ("excess", "<f8", 0),
            ("warm", "<f4", 0),
        ),
    ),
    (
        "season",
        (
            ("given", "q"),
            ("origin", "d"),
            ("cadence", "d"),
            ("period", "q"),
            ("since", "q"),
            ("bins", "q"),
            ("next_refit", "q"),
            ("next_check", "q"),
            ("errors_seen", "q"),
            ("fit_last", "q"),
            ("trend", "d"),
            ("clip_scale", "d"),
        ),
        (("start_times", "<i8", 0), ("start_values", "<f8", 0), ("shape", "<f4", 0)),
    ),
    (
        "season.recent",
        (("factor", "q"), ("last", "q"), ("anchor", "d"), ("total", "d"), ("count", "q")),
        (("closed", "f", 0),),
    ),
    (
        "season.overview",
        (("factor", "q"), ("last", "q"), ("anchor", "d"), ("total", "d"), ("count", "q")),
        (("closed", "f", 0),),
    ),
)
_HEADER = struct.Struct("<4sH")
_SCALARS = struct.Struct("<" + "".join(code for _, fields, _ in _PARTS for _, code in fields))
_LENGTHS = struct.Struct("<" + "I" * sum(len(arrays) for _, _, arrays in _PARTS))
_CRC = struct.Struct("<I")
_DTYPES = {
    kind: np.dtype(kind) for _, _, arrays in _PARTS for _, kind, _ in arrays if len(kind) > 1
}
_NO_TIME = -(2**63)


def _parts(state: DetectorState) -> list[object]:
    """The objects of _PARTS, in order."""
    season = state.season
    return [state, state.tails, season, season.recent, season.overview]


def _encode(state: DetectorState) -> bytes:
    scalars: list[object] = []
    arrays: list[bytes] = []
    for owner, (_, fields, array_fields) in zip(_parts(state), _PARTS, strict=True):
        for name, _ in fields:
            value = getattr(owner, name)
            scalars.append(_NO_TIME if value is None else value)
        for name, kind, _ in array_fields:
            value = getattr(owner, name)
            if len(kind) == 1:
                arrays.append(value.tobytes())
            else:
                arrays.append(np.ascontiguousarray(value, dtype=_DTYPES[kind]).tobytes())
    settings = _settings_bytes(state.settings, state.period)
    body = b"".join(
        (
            _HEADER.pack(MAGIC, VERSION),
            struct.pack("<H", len(settings)),
            settings,
            _SCALARS.pack(*scalars),
            _LENGTHS.pack(*(len(chunk) for chunk in arrays)),
            *arrays,
        )
    )
    return body + _CRC.pack(zlib.crc32(body))


def _decode(data: bytes) -> DetectorState:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StateInvalid(f"a detector state is bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEADER.size + 2 + _CRC.size or data[:4] != MAGIC:
        raise StateInvalid("not a detector state (no NNDS header): rebuild it from the history")
    _, version = _HEADER.unpack_from(data)
    if version != VERSION:
        raise StateInvalid(
            f"detector state version {version}, this detector reads version {VERSION}: "
            "rebuild it from the history"
        )
    body, (crc,) = data[: -_CRC.size], _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(body) != crc:
        raise StateInvalid("the detector state is corrupt (checksum mismatch): rebuild it")
    try:
        return _decode_body(body)
    except (struct.error, ValueError, TypeError, IndexError) as exc:
        raise StateInvalid(f"the detector state is corrupt ({exc}): rebuild it") from None


def _decode_body(body: bytes) -> DetectorState:
    at = _HEADER.size
    (size,) = struct.unpack_from("<H", body, at)
    at += 2
    settings, period, key = _settings_from(body[at : at + size])
    at += size
    scalars = iter(_SCALARS.unpack_from(body, at))
    at += _SCALARS.size
    lengths = iter(_LENGTHS.unpack_from(body, at))
    at += _LENGTHS.size
    rows = 2 * (len(settings.horizons) + len(settings.spread_horizons))
    found: list[dict[str, object]] = []
    for _, fields, array_fields in _PARTS:
        values: dict[str, object] = {name: next(scalars) for name, _ in fields}
        for name, kind, shape in array_fields:
            length = next(lengths)
            chunk = body[at : at + length]
            at += length
            if len(kind) == 1:
                numbers = array(kind)
                numbers.frombytes(chunk)
                values[name] = numbers
                continue
            # Read-only views: the detector replaces these arrays, never writes into them.
            loaded = np.frombuffer(chunk, dtype=_DTYPES[kind])
            if shape == -2:
                values[name] = loaded.reshape(rows, 2, -1)
            else:
                values[name] = loaded.reshape(rows if shape < 0 else shape, -1) if shape else loaded
        found.append(values)
    if at != len(body):
        raise ValueError("array lengths do not add up")
    own, tails, season, recent, overview = found
    if own["last_timestamp_ms"] == _NO_TIME:
        own["last_timestamp_ms"] = None
    state = DetectorState(
        settings=settings,
        period=period,
        settings_key=key,
        tails=Tails(**tails),  # type: ignore[arg-type]
        season=seasonal.Season(
            **season,  # type: ignore[arg-type]
            recent=seasonal.Bins(**recent),  # type: ignore[arg-type]
            overview=seasonal.Bins(**overview),  # type: ignore[arg-type]
        ),
        **own,  # type: ignore[arg-type]
    )
    _check_shapes(state, rows)
    return state


@lru_cache(maxsize=64)
def _settings_from(data: bytes) -> tuple[AdaptiveSettings, int | None, str]:
    """Settings, given period and key of a state's settings bytes (few distinct: cached)."""
    values = _SETTINGS.unpack_from(data)
    sensitivity, quiet, window, choice, history, quantile, period, horizons, spreads = values
    (drift_horizon,) = struct.unpack_from("<q", data, _SETTINGS.size)
    looks = np.frombuffer(data, dtype="<i8", offset=_SETTINGS.size + 8).tolist()
    if len(looks) != horizons + spreads:
        raise ValueError("settings do not add up")
    settings = AdaptiveSettings(
        sensitivity=sensitivity,
        quiet=quiet,
        level_window=window,
        choice_window=choice,
        horizons=tuple(looks[:horizons]),
        spread_horizons=tuple(looks[horizons:]),
        drift_horizon=drift_horizon,
        history=history,
        tail_quantile=quantile,
    )
    return settings, period or None, settings_key(settings, period or None)


def _check_shapes(state: DetectorState, rows: int) -> None:
    """Garbage that passed the checksum would fail later, somewhere less clear: fail here."""
    tails = state.tails
    if tails.counts.shape != (rows, 2, SPAN) or tails.masses.shape != (rows, 2, 5):
        raise ValueError("tail summaries of the wrong shape")
    for column in (tails.anchor, tails.seen, tails.threshold, tails.excess):
        if column.shape != (rows,):
            raise ValueError("tail fits of the wrong shape")
    warming = tails.seen[tails.anchor == np.iinfo(np.int32).min].sum()
    if tails.warm.shape != (warming,):
        raise ValueError("warming tails of the wrong length")
    if len(state.partial_sum) != 2 or len(state.partial_count) != 2:
        raise ValueError("choice sums of the wrong shape")
    drift = (state.partial_drift, state.drift_square, state.drift_mean)
    if any(len(numbers) != 4 for numbers in drift) or len(state.drift_blocks) != 2:
        raise ValueError("drift sums of the wrong shape")
    if state.season.start_times.shape != state.season.start_values.shape:
        raise ValueError("first readings of the wrong shape")
