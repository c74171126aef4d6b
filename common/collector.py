"""Python's garbage collector in the long-running processes (the web app, the worker's
pool processes).

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
