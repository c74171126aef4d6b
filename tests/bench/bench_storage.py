"""What a fleet's history costs: bytes per reading raw and compacted, a 30-day chart,
compaction's CPU. Printed with the targets of issue 23 beside them.

    .venv/bin/python tests/bench/bench_storage.py    (or `make bench`; Neo4j needs `make neo4j`)

- Bytes per reading on the real series of the accuracy corpora (../shared/accuracy/data
  beside the project, or ACCURACY_DATA; read where they are, never copied), sent without
  ids as agents do: raw readings (chain nodes) and compacted chunks, as the growth of the
  embedded server's memory (Redis `used_memory`) and of Neo4j's store files on disk
  (after a checkpoint; transaction logs not counted). Chunks are written as compaction
  writes them (REPLACE_CHUNKS), COMPACTED_ROUNDS times on new metrics: the figure is the
  mean of the rounds after the first (the first also pays the store's one-off growth);
  in a running store the raw window is a rolling set whose
  freed node slots new readings reuse, so its size stays what the raw figure says.
  Without the corpora: random-walk series with two decimals, and it says so.
- Which encoding of a chunk's timestamps and values takes fewest bytes on those series,
  chunk by chunk of CHUNK_READINGS, as bytes (before base85): pcodec (what chunks use),
  Gorilla's delta-of-delta and XOR encoding (its size counted bit by bit as the paper's encoder
  writes it), and zlib -9 of the timestamps' deltas and the values' bytes.
- What that means for a fleet at one reading a minute: 10,000 metrics x 30 days compacted,
  the raw window on top, and metric-days per GB.
- A 30-day chart of one metric (43,200 readings, the last 48 h raw) through
  GET /api/metrics/{id}/series?points=1000, median of 15, on the embedded store; the same
  with every reading raw beside it.
- Compaction keeping up with 50,000 metrics a minute: CPU (this process plus the store's
  server) per reading compacted, for metrics whose last chunk is half full and that each
  left the raw window by an hour of readings, as one run of the beat task finds them.
"""

from __future__ import annotations

import csv
import itertools
import os
import statistics
import struct
import sys
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import redis

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from common.epoch import now_ms  # noqa: E402
from common.graph.executors import Neo4jExecutor  # noqa: E402
from common.ids import reading_id  # noqa: E402
from common.metrics.chunks import CHUNK_READINGS, encode_chunk, unpack  # noqa: E402
from common.metrics.compaction import HOUR_MS, MaintenanceReport, compact_metric  # noqa: E402
from common.metrics.models import CompactionTarget, NewReading, ReadingSeries  # noqa: E402
from common.metrics.repository import chunk_params  # noqa: E402
from common.settings import Settings  # noqa: E402
from tests.bench.stack import Stack, embedded_stack, running_app, store_metric  # noqa: E402
from tests.neo4j_server import Neo4jServer, Neo4jUnavailableError, start_neo4j  # noqa: E402

CORPORA = Path(os.environ.get("ACCURACY_DATA", ROOT.parent / "shared" / "accuracy" / "data"))
MINUTE_MS = 60_000
FLEET_METRICS = 10_000
FLEET_DAYS = 30
FLEET_RATE_PER_MINUTE = 50_000
CHART_READINGS = 43_200
COMPACT_METRICS = 300
BATCH = 5_000
# The series are compacted this many times over: the first round also pays the store's
# one-off growth, and on the embedded store, holding the raw readings too, a round's figure
# moves by up to a byte with the store's transient allocations (a high round, then a low
# one), so the capacity figure is the mean of the rounds after the first.
COMPACTED_ROUNDS = 7


def corpus_series() -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(where from, [(timestamps_ms, values)]): the accuracy corpora, or random walks."""
    files = sorted(CORPORA.glob("*/*.csv")) if CORPORA.is_dir() else []
    if not files:
        rng = np.random.default_rng(7)
        walks = [
            (
                1_767_225_600_000 + np.arange(20_000, dtype=np.int64) * MINUTE_MS,
                np.round(50 + np.cumsum(rng.normal(0, 0.5, 20_000)), 2),
            )
            for _ in range(20)
        ]
        return f"random walks (no corpora at {CORPORA})", walks
    out = []
    for path in files:
        with path.open() as handle:
            rows = list(csv.reader(handle))[1:]
        times = [_epoch_ms(t) for t, _ in rows]
        out.append((np.array(times, dtype=np.int64), np.array([float(v) for _, v in rows])))
    return f"{len(files)} real series of {CORPORA}", out


def _epoch_ms(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return int(moment.replace(tzinfo=moment.tzinfo or UTC).timestamp() * 1000)


def as_stored(values: np.ndarray, engine: str) -> np.ndarray:
    """What the engine reads back (FalkorDB: 15 significant digits), which chunks keep."""
    if engine == "neo4j":
        return values
    return np.array([float(f"{v:.15g}") for v in values.tolist()])


class Footprint:
    """The store's size: the embedded server's memory, or Neo4j's store files."""

    def __init__(self, stack: Stack, neo4j: Neo4jServer | None):
        self.stack = stack
        self.neo4j = neo4j
        self.client = redis.Redis.from_url(stack.server.redis_url)
        self.store_dir: Path | None = None
        if neo4j is not None:
            executor = stack.store.executor
            assert isinstance(executor, Neo4jExecutor)
            [row] = executor.read(
                "SHOW SETTINGS YIELD name, value WHERE name = 'server.directories.data' "
                "RETURN value"
            )
            self.store_dir = Path(row["value"]) / "databases" / neo4j.database

    def bytes(self) -> int:
        if self.store_dir is None:
            return int(self.client.info("memory")["used_memory"])
        # The server checkpoints every second (NEO4J_CHECKPOINT_SECONDS, set below): once
        # the files stop growing, what was written is on disk.
        sizes = [-1, 0]
        while sizes[-1] != sizes[-2]:
            time.sleep(3)
            sizes.append(sum(p.stat().st_size for p in self.store_dir.rglob("*") if p.is_file()))
        return sizes[-1]


def bytes_per_reading(
    stack: Stack, neo4j: Neo4jServer | None, series: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[float, list[float], int]:
    """Bytes per reading of the series raw, then compacted (once per round, each on new
    metrics), and how many readings a round."""
    engine = "neo4j" if neo4j else "falkordb"
    footprint = Footprint(stack, neo4j)
    readings = stack.store.readings
    total = sum(len(times) for times, _ in series)
    # The metrics are made first: a metric and its service are a few kB each, which is
    # not what a reading costs (94 of them were 0.6 bytes a compacted reading).
    raw_ids = [store_metric(stack, f"raw{n}") for n in range(len(series))]
    compacted_ids = [
        [store_metric(stack, f"compacted{k}-{n}") for n in range(len(series))]
        for k in range(COMPACTED_ROUNDS)
    ]
    before = footprint.bytes()
    for metric_id, (times, values) in zip(raw_ids, series, strict=True):
        batch = [
            NewReading(reading_id(t, v), t, v)
            for t, v in zip(times.tolist(), values.tolist(), strict=True)
        ]
        for first in range(0, len(batch), BATCH):
            readings.append(metric_id, batch[first : first + BATCH])
    raw = (footprint.bytes() - before) / total
    compacted = []
    for metric_ids in compacted_ids:
        before = footprint.bytes()
        for metric_id, (times, values) in zip(metric_ids, series, strict=True):
            stored = as_stored(values, engine)
            ids = [reading_id(t, v) for t, v in zip(times.tolist(), stored.tolist(), strict=True)]
            whole = ReadingSeries(ids=ids, timestamps_ms=times, values=stored)
            for chunk in chunk_params(whole, None, CHUNK_READINGS):
                readings.replace_history(metric_id, None, [], [], [chunk])
        compacted.append((footprint.bytes() - before) / total)
    return raw, compacted, total


def gorilla_bits(times: np.ndarray, values: np.ndarray) -> int:
    """Bits Gorilla (Pelkonen et al., VLDB 2015) writes for a chunk: both firsts whole, then
    each timestamp's delta of deltas in its bucket (1, 9, 12, 16 or 36 bits) and each
    value's XOR with the one before (1 bit if equal; else its meaningful bits, plus 13 when
    they do not fit the previous XOR's window)."""
    bits = 64 + 64
    deltas = np.diff(times)
    bits += 64 if len(deltas) else 0
    for dod in np.diff(deltas).tolist():
        if dod == 0:
            bits += 1
        elif -63 <= dod <= 64:
            bits += 9
        elif -255 <= dod <= 256:
            bits += 12
        elif -2047 <= dod <= 2048:
            bits += 16
        else:
            bits += 36
    words = [struct.unpack("<Q", struct.pack("<d", v))[0] for v in values.tolist()]
    lead, trail = 65, 65  # no window yet
    for before, now in itertools.pairwise(words):
        xor = before ^ now
        if xor == 0:
            bits += 1
            continue
        leading = min(64 - xor.bit_length(), 31)
        trailing = (xor & -xor).bit_length() - 1
        if leading >= lead and trailing >= trail:
            bits += 2 + 64 - lead - trail
        else:
            lead, trail = leading, trailing
            bits += 2 + 5 + 6 + 64 - leading - trailing
    return bits


def codec_bytes(series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Bytes per reading of timestamps and values, chunk by chunk, for each encoding."""
    sizes = dict.fromkeys(("pcodec", "Gorilla", "zlib -9"), 0.0)
    total = 0
    for times, values in series:
        for at in range(0, len(times), CHUNK_READINGS):
            t = times[at : at + CHUNK_READINGS]
            v = values[at : at + CHUNK_READINGS]
            chunk = encode_chunk(ReadingSeries(ids=[""] * len(t), timestamps_ms=t, values=v), True)
            sizes["pcodec"] += len(unpack(chunk.times)) + len(unpack(chunk.vals))
            sizes["Gorilla"] += gorilla_bits(t, v) / 8
            deltas = np.diff(t, prepend=0).astype(np.int64).tobytes()
            sizes["zlib -9"] += len(zlib.compress(deltas, 9)) + len(
                zlib.compress(v.astype(np.float64).tobytes(), 9)
            )
            total += len(t)
    return {name: size / total for name, size in sizes.items()}


def fill_compacted(stack: Stack, metric_id: str, times: np.ndarray, values: np.ndarray) -> None:
    """Readings straight into chunks, the boundary after them (as compaction leaves them)."""
    ids = [reading_id(t, v) for t, v in zip(times.tolist(), values.tolist(), strict=True)]
    whole = ReadingSeries(ids=ids, timestamps_ms=times, values=values)
    chunks = chunk_params(whole, None, CHUNK_READINGS)
    stack.store.readings.replace_history(
        metric_id, None, [], [], chunks, new_through=int(times[-1]) + 1
    )


def chart_ms(stack: Stack) -> tuple[float, float]:
    """Median ms of a 30-day chart (points=1000): (48 h raw + the rest compacted, all raw)."""
    end = now_ms() - now_ms() % MINUTE_MS
    times = end - np.arange(CHART_READINGS, dtype=np.int64)[::-1] * MINUTE_MS
    values = np.round(50 + 10 * np.sin(np.arange(CHART_READINGS) / 200), 2)
    raw_start = int(np.searchsorted(times, end - 48 * HOUR_MS))
    mixed = store_metric(stack, "chart")
    fill_compacted(stack, mixed, times[:raw_start], values[:raw_start])
    all_raw = store_metric(stack, "chart-raw")
    for metric_id, first in ((mixed, raw_start), (all_raw, 0)):
        batch = [
            NewReading(reading_id(t, v), t, v)
            for t, v in zip(times[first:].tolist(), values[first:].tolist(), strict=True)
        ]
        for at in range(0, len(batch), BATCH):
            stack.store.readings.append(metric_id, batch[at : at + BATCH])
    medians = []
    with (
        running_app(stack) as app,
        httpx.Client(base_url=app.base_url, headers={"X-API-Key": stack.key}, timeout=60) as http,
    ):
        for metric_id in (mixed, all_raw):
            took = []
            for _ in range(15):
                started = time.perf_counter()
                response = http.get(f"/api/metrics/{metric_id}/series", params={"points": 1000})
                took.append(time.perf_counter() - started)
                assert response.status_code == 200 and response.json()["readings"] == CHART_READINGS
            medians.append(1000 * statistics.median(took))
    return medians[0], medians[1]


def server_cpu_seconds(stack: Stack) -> float:
    """CPU seconds the embedded server (redis-server with FalkorDB) has used."""
    pid = int(redis.Redis.from_url(stack.server.redis_url).info("server")["process_id"])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compaction_cpu(stack: Stack) -> tuple[float, float, int]:
    """CPU microseconds per reading compacted (this process, the store), and how many."""
    readings = stack.store.readings
    per_run = int(Settings().compaction_interval_seconds // 60)  # readings a minute apart
    start = 1_767_225_600_000
    targets = []
    for n in range(COMPACT_METRICS):
        metric_id = store_metric(stack, f"fleet{n}")
        half = CHUNK_READINGS // 2
        times = start + np.arange(half + per_run + 1, dtype=np.int64) * MINUTE_MS
        values = np.round(50 + np.cumsum(np.random.default_rng(n).normal(0, 0.5, len(times))), 2)
        fill_compacted(stack, metric_id, times[:half], values[:half])
        readings.append(
            metric_id,
            [
                NewReading(reading_id(t, v), t, v)
                for t, v in zip(times[half:].tolist(), values[half:].tolist(), strict=True)
            ],
        )
        targets.append(CompactionTarget(metric_id, int(times[half - 1]) + 1, int(times[-1])))
    boundary = start + (CHUNK_READINGS // 2 + per_run) * MINUTE_MS
    report = MaintenanceReport()
    process_before, server_before = time.process_time(), server_cpu_seconds(stack)
    for target in targets:
        compact_metric(readings, target, boundary, report)
    process = time.process_time() - process_before
    server = server_cpu_seconds(stack) - server_before
    assert report.compacted == per_run * COMPACT_METRICS, report
    return 1e6 * process / report.compacted, 1e6 * server / report.compacted, report.compacted


def main() -> None:
    source, series = corpus_series()
    print(f"series: {source}")
    encodings = codec_bytes(series)
    print(
        "a chunk's timestamps and values, bytes per reading before base85: "
        + ", ".join(f"{name} {size:.2f}" for name, size in encodings.items())
    )
    neo4j: Neo4jServer | None = None
    os.environ["NEO4J_CHECKPOINT_SECONDS"] = "1"
    try:
        neo4j = start_neo4j(Path(os.environ.get("TMPDIR", "/tmp")))
    except Neo4jUnavailableError as exc:
        print(f"Neo4j column skipped: {exc}")
    figures: dict[str, tuple[float, list[float]]] = {}
    count = 0
    try:
        for engine, server in (("falkordb", None), ("neo4j", neo4j)):
            if engine == "neo4j" and server is None:
                continue
            with embedded_stack(server) as stack:
                raw, rounds, count = bytes_per_reading(stack, server, series)
                figures[engine] = (raw, rounds)
    finally:
        if neo4j is not None:
            neo4j.stop()
    print(f"bytes per reading, {count:,} readings sent without ids:")
    steady: dict[str, float] = {}
    for engine, (raw, per_round) in figures.items():
        where = "memory" if engine == "falkordb" else "disk"
        target = 4 if engine == "falkordb" else 16
        steady[engine] = compacted = statistics.mean(per_round[1:])
        print(
            f"  {engine:8} {where:6}  raw {raw:7.1f}   compacted {compacted:5.2f}"
            f"   (target compacted <= {target})   {raw / compacted:5.0f}x smaller;"
            f"   rounds: {', '.join(f'{r:.2f}' for r in per_round)} (the first not counted)"
        )
    raw, compacted = figures["falkordb"][0], steady["falkordb"]
    fleet = FLEET_METRICS * FLEET_DAYS * 1440
    window = FLEET_METRICS * 48 * 60
    print(
        f"fleet of {FLEET_METRICS:,} metrics x {FLEET_DAYS} days at one reading a minute "
        f"({fleet / 1e6:.0f} M readings) on the embedded store: compacted "
        f"{fleet * compacted / 1e9:.2f} GB (target <= 4), raw window of 48 h on top "
        f"{window * raw / 1e9:.2f} GB"
    )
    per_gb = 1e9 / (1440 * compacted)
    print(f"  one GB of compacted history holds {per_gb:,.0f} metric-days at one reading a minute")
    with embedded_stack() as stack:
        mixed, all_raw = chart_ms(stack)
        print(
            f"30-day chart of {CHART_READINGS:,} readings, points=1000: {mixed:.1f} ms median "
            f"with history compacted (target <= 100), {all_raw:.1f} ms all raw"
        )
        process_us, server_us, compacted_n = compaction_cpu(stack)
        share = (process_us + server_us) * FLEET_RATE_PER_MINUTE / 60 / 1e6
        print(
            f"compaction: {process_us + server_us:.1f} us CPU per reading ({process_us:.1f} "
            f"compacting, {server_us:.1f} in the store; {compacted_n:,} readings of "
            f"{COMPACT_METRICS} metrics, one run's worth each); at {FLEET_RATE_PER_MINUTE:,} "
            f"readings a minute {100 * share:.1f} % of one core (target < 10 %)"
        )


if __name__ == "__main__":
    main()
