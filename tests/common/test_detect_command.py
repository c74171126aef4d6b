"""`neonomaly detect FILE.csv` as users run it: argparse in, CSV out, exit codes."""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np
import pytest

from common import detect_command


def run_tool(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="neonomaly")
    detect_command.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["detect", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def noisy_rows(n: int = 400, seed: int = 0) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    values = rng.normal(20, 1, n)
    values[300] += 15
    start = 1_714_521_600
    return [(str(start + 60 * i), f"{v:.3f}") for i, v in enumerate(values)]


def write_csv(path: Path, rows: list[tuple[str, str]], header: str = "timestamp,value") -> Path:
    path.write_text(header + "\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return path


def test_rows_in_input_order_with_duplicates(tmp_path: Path, capsys) -> None:
    rows = noisy_rows()
    rows.append(rows[10])  # a duplicate timestamp (and value), kept as its own row
    shuffled = [rows[i] for i in np.random.default_rng(1).permutation(len(rows))]
    code, out, err = run_tool(
        [str(write_csv(tmp_path / "r.csv", shuffled)), "--method", "rolling", "--window", "30"],
        capsys,
    )
    assert code == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    assert list(table[0]) == list(detect_command.OUTPUT_COLUMNS)
    assert [(r["timestamp"], r["value"]) for r in table] == shuffled
    flagged = [r["timestamp"] for r in table if r["is_anomaly"] == "true"]
    assert rows[300][0] in flagged
    assert "method: rolling" in err and "events:" in err


def test_online_leaves_unjudged_cells_empty(tmp_path: Path, capsys) -> None:
    path = write_csv(tmp_path / "r.csv", noisy_rows())
    code, out, _ = run_tool(
        [str(path), "--method", "rolling", "--online", "--window", "30"], capsys
    )
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    # Not judged: no expected value, band, score or probability (not a score of 0 and a
    # probability of 1, which read as "judged, and normal").
    first = table[0]
    assert first["expected"] == first["lower"] == first["score"] == first["probability"] == ""
    assert first["is_anomaly"] == "false"
    assert table[30]["expected"] != "" and table[30]["score"] != ""
    assert table[30]["probability"] != ""


def test_iso_timestamps_and_stdin(monkeypatch, capsys) -> None:
    text = "value,timestamp\n" + "".join(
        f"{v},2024-05-01T{i // 60:02d}:{i % 60:02d}:00{'Z' if i % 2 else ''}\n"
        for i, v in enumerate(np.random.default_rng(2).normal(0, 1, 200).round(3))
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    code, out, err = run_tool(["-", "--method", "rolling", "--window", "20"], capsys)
    assert code == 0, err
    assert len(out.splitlines()) == 201


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,value\n1,2\n", "line 1: header has no timestamp column"),
        ("timestamp,value\n1,2\n2,abc\n", "line 3: value 'abc' is not a number"),
        ("timestamp,value\n1,2\n\n2,nan\n", "line 4: value 'nan' is not finite"),
        ("timestamp,value\nyesterday,2\n", "line 2: cannot read timestamp 'yesterday'"),
        ("timestamp,value\n", "no readings"),
        ("", "empty"),
        ("timestamp,value\n1,2\n2,3\n", "needs at least 3 readings"),
    ],
)
def test_bad_input_exit_2(tmp_path: Path, capsys, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = run_tool([str(path)], capsys)
    assert code == 2
    assert message in err
    assert out == "" and "Traceback" not in err


def test_missing_file_exit_2(tmp_path: Path, capsys) -> None:
    code, _, err = run_tool([str(tmp_path / "nope.csv")], capsys)
    assert code == 2 and "cannot read" in err


def test_plot_written(tmp_path: Path, capsys) -> None:
    path = write_csv(tmp_path / "r.csv", noisy_rows())
    png = tmp_path / "r.png"
    code, _, _ = run_tool([str(path), "--method", "rolling", "--plot", str(png)], capsys)
    assert code == 0
    assert png.read_bytes().startswith(b"\x89PNG")
