"""`neonomaly detect FILE.csv`: the detection library on a CSV file, offline.

Kept beside the CLI, out of the pure detection library (which does no I/O). numpy and the
detection library are imported when the command runs, not when `neonomaly` starts: every
other subcommand (and `--help`) would otherwise pay for statsmodels and scipy.

Input: a header naming `timestamp` and `value` columns (others ignored); timestamps in
ISO 8601 (naive means UTC) or epoch seconds. Readings need not be in time order: they
are sorted (stably; duplicate timestamps kept) for detection and reported back in input
order, one output row per input row.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from common.epoch import to_epoch_ms
from common.methods import METHODS, MethodSettings

if TYPE_CHECKING:
    import numpy as np

    from common.detection.result import DetectionResult

# Year 5138: past it an epoch number is more likely milliseconds or a typo than a time.
MAX_EPOCH_SECONDS = Decimal("1e11")
OUTPUT_COLUMNS = (
    "timestamp",
    "value",
    "expected",
    "lower",
    "upper",
    "score",
    "probability",
    "is_anomaly",
)


class InputError(ValueError):
    """The CSV cannot be read as readings; the message names the line."""


@dataclass(frozen=True)
class Readings:
    timestamps_text: list[str]
    values_text: list[str]
    timestamps_ms: np.ndarray
    values: np.ndarray


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `detect` subcommand."""
    parser = subparsers.add_parser(
        "detect",
        help="find anomalies in a CSV of readings (timestamp,value)",
        description=(
            "Read a CSV with `timestamp` and `value` columns (ISO 8601, naive = UTC, or "
            "epoch seconds) and print each row with expected, lower, upper, score and "
            "is_anomaly, in input order. A summary goes to stderr."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="CSV file, or - for standard input")
    # The method's settings, with the help the API gives them.
    method = MethodSettings.model_fields
    parser.add_argument(
        "--method", choices=METHODS, default="auto", help=method["method"].description
    )
    for flag in ("online", "robust"):
        parser.add_argument(f"--{flag}", action="store_true", help=method[flag].description)
    numbers = (
        ("period", int),
        ("window", int),
        ("sensitivity", float),
        ("quiet", int),
        ("sigma", float),
        ("min_deviation", float),
        ("min_relative_deviation", float),
    )
    for name, kind in numbers:
        flag = name.replace("_", "-")
        parser.add_argument(f"--{flag}", dest=name, type=kind, help=method[name].description)
    parser.add_argument(
        "--direction", choices=("up", "down", "both"), help=method["direction"].description
    )
    parser.add_argument("--plot", metavar="PNG", help="also draw the result to this PNG file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `detect` on args.file; 0 on success, 2 on input the detection cannot use."""
    import numpy as np

    from common.detection import DetectionError, detect

    try:
        readings = _read(args.file)
        order = np.argsort(readings.timestamps_ms, kind="stable")
        # Not validated here: detect's own checks say what is wrong as a DetectionError.
        chosen = {name: getattr(args, name) for name in MethodSettings.model_fields}
        settings = MethodSettings.model_construct(**chosen)
        result = detect(readings.values[order], readings.timestamps_ms[order], settings)
    except (InputError, DetectionError) as exc:
        print(f"neonomaly detect: {exc}", file=sys.stderr)
        return 2
    _write(sys.stdout, readings, result, order)
    _summarise(sys.stderr, result)
    if args.plot:
        from common.detection.plot import render_png

        png = render_png(
            readings.timestamps_ms[order],
            readings.values[order],
            result,
            title="standard input" if args.file == "-" else Path(args.file).name,
        )
        Path(args.plot).write_bytes(png)
        print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def _read(file: str) -> Readings:
    if file == "-":
        return parse_readings(sys.stdin)
    try:
        with open(file, newline="", encoding="utf-8") as stream:
            return parse_readings(stream)
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{file} is not UTF-8 text") from None


def parse_readings(stream: TextIO) -> Readings:
    """Readings of a CSV stream, in file order; InputError names the offending line."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise InputError("the file is empty: expected a header with timestamp,value")
    names = [name.strip().lower() for name in header]
    missing = [column for column in ("timestamp", "value") if column not in names]
    if missing:
        raise InputError(
            f"line 1: header has no {' or '.join(missing)} column "
            f"(found: {', '.join(header) or 'nothing'}); expected timestamp,value"
        )
    time_column, value_column = names.index("timestamp"), names.index("value")
    timestamps_text: list[str] = []
    values_text: list[str] = []
    times: list[int] = []
    values: list[float] = []
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line
        if len(row) <= max(time_column, value_column):
            raise InputError(f"line {line}: {len(row)} fields, expected at least {len(names)}")
        time_text, value_text = row[time_column].strip(), row[value_column].strip()
        times.append(_parse_time(time_text, line))
        values.append(_parse_value(value_text, line))
        timestamps_text.append(time_text)
        values_text.append(value_text)
    if not values:
        raise InputError("no readings after the header")
    import numpy as np

    return Readings(
        timestamps_text=timestamps_text,
        values_text=values_text,
        timestamps_ms=np.asarray(times, dtype=np.int64),
        values=np.asarray(values, dtype=np.float64),
    )


def _parse_time(text: str, line: int) -> int:
    """Epoch milliseconds of an epoch-seconds number or an ISO 8601 time, in integers."""
    try:
        seconds = Decimal(text)
    except InvalidOperation:
        pass
    else:
        if not seconds.is_finite() or abs(seconds) > MAX_EPOCH_SECONDS:
            raise InputError(f"line {line}: timestamp {text!r} is not a plausible epoch second")
        return int((seconds * 1000).to_integral_value())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"line {line}: cannot read timestamp {text!r}: use ISO 8601 "
            "(2024-05-01T12:00:00Z) or epoch seconds"
        ) from None
    return to_epoch_ms(moment)  # naive is UTC


def _parse_value(text: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"line {line}: value {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"line {line}: value {text!r} is not finite")
    return value


def _number(value: float) -> str:
    return "" if not math.isfinite(value) else f"{value:.10g}"


def _write(stream: TextIO, readings: Readings, result: DetectionResult, order: np.ndarray) -> None:
    import numpy as np

    # Results are in sorted order; row `order[k]` of the input got result k.
    position = np.empty_like(order)
    position[order] = np.arange(order.shape[0])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(OUTPUT_COLUMNS)
    # A row not judged (too little history before it) has no score or probability: blank,
    # as its expected value and bounds are, not the 0 and 1 the library fills in.
    judged = result.judged
    columns = [
        result.expected,
        result.lower,
        result.upper,
        np.where(judged, result.score, np.nan),
        np.where(judged, result.probability, np.nan),
    ]
    for row, k in enumerate(position.tolist()):
        writer.writerow(
            [
                readings.timestamps_text[row],
                readings.values_text[row],
                *(_number(float(column[k])) for column in columns),
                "true" if result.is_anomaly[k] else "false",
            ]
        )
    stream.write(buffer.getvalue())


def _summarise(stream: TextIO, result: DetectionResult) -> None:
    import numpy as np

    params = ", ".join(f"{key}={value}" for key, value in result.params.items())
    flagged = int(np.count_nonzero(result.is_anomaly))
    print(f"method: {result.method}", file=stream)
    print(f"params: {params}", file=stream)
    print(
        f"readings: {len(result)}, judged: {int(np.count_nonzero(result.judged))}, "
        f"flagged: {flagged}, events: {len(result.events)}",
        file=stream,
    )
    for event in result.events:
        if event.kind is not None:
            print(f"  {event.kind.name}: {event.kind.summary}", file=stream)
