"""Python's garbage collector in the long-running processes (the web app, the worker's
pool processes), and while a graph read's reply is parsed.

The objects alive once a process has started (modules, the app, its models and schemas,
the worker's tasks and clients: 120,000-175,000 of them) live as long as the process, yet
each full pass of the collector (generation 2) walked all of them. A fleet request or a
sweep batch allocates enough to set one off every few requests or batches: 70-150 ms a
pass in the web, ~80 ms in a worker pool process, about 12 % of the pool's CPU in sweeps
(BENCHMARKS.md, Ingest and Fleet sweeps).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


def freeze_startup_objects() -> None:
    """Leave the objects alive now out of the collector's full passes, once per process:
    call it when the process has started (its imports done, its clients open). They live
    as long as the process anyway; what they make later is collected as before, and
    garbage left by the start is collected first."""
    if gc.get_freeze_count():
        return
    gc.collect()
    gc.freeze()
    log.info("startup objects left out of the collector's full passes: %d", gc.get_freeze_count())


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a graph read's reply is received and parsed
    (common.graph.executors).

    A compact reply makes a small list per scalar (30,000 for a page of 10,000 readings),
    none of them in a cycle; they outlive the youngest generations while the reply is
    parsed, so the collector ran collections of the whole process again and again
    meanwhile, for nothing (BENCHMARKS.md, Graph store). Reads only: they are bounded (a
    window is read in pages) and writes' replies are small. The collector is
    process-wide: it is switched back on only by the call that switched it off, so two
    threads reading at once leave it on when both are done, as it was.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
