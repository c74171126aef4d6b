"""Every Redis key and channel Neonomaly uses, in one place: jobs, scans, deliveries.

All live under the `neonomaly:` prefix, so they never clash with Celery's own keys
(`celery`, `_kombu.*`, `celery-task-meta-*`) on the shared server.
"""

PREFIX = "neonomaly"


def _key(*parts: str | int) -> str:
    return ":".join([PREFIX, *map(str, parts)])


# --- jobs ---------------------------------------------------------------------------------


def job(job_id: str) -> str:
    """The job record: one JSON document, expires after JOB_RECORD_TTL_SECONDS."""
    return _key("job", job_id)


def job_result(job_id: str) -> str:
    """The job's result: a hash (`meta` plus chunks of points), expires after RESULT_TTL_SECONDS."""
    return _key("job", job_id, "result")


def job_finished_channel(job_id: str) -> str:
    """Pub/sub channel told when the job reaches a final state (for `?wait=`)."""
    return _key("job", job_id, "finished")


def owner_jobs(owner_id: str) -> str:
    """Sorted set of an owner's job ids, scored by submission time (epoch ms)."""
    return _key("owner", owner_id, "jobs")


# --- scans --------------------------------------------------------------------------------


def scan_cursor() -> str:
    """When the last scan sweep started (epoch ms): the next one looks at appends since."""
    return _key("scan", "cursor")


def scan_state(metric_id: str) -> str:
    """A metric's scan state: a hash of its detector state's bytes, their version (raised by
    every save), the metric's cadence and what a sweep said of it once."""
    return _key("scan", "metric", metric_id, "state")


def scan_lease(metric_id: str) -> str:
    """The sweep whose batch holds the metric now (SET NX, expires on its own): no other
    sweep queues it, judges it or saves its state meanwhile."""
    return _key("scan", "metric", metric_id, "lease")


def scan_behind() -> str:
    """Set of metric ids a sweep must look at again although nothing was appended to them
    (their batch failed, stopped at its cap, or was still pending)."""
    return _key("scan", "behind")


def sweep(sweep_id: str) -> str:
    """A sweep's record over all owners: when it started and finished, its batches, counts."""
    return _key("sweep", sweep_id)


def sweep_owner(sweep_id: str, owner_id: str) -> str:
    """A sweep's counts for one owner's metrics (what GET /api/scans shows that owner)."""
    return _key("sweep", sweep_id, "owner", owner_id)


def owner_sweeps(owner_id: str) -> str:
    """Sorted set of the sweeps that judged an owner's metrics, scored by start (epoch ms)."""
    return _key("owner", owner_id, "sweeps")


# --- webhook deliveries -------------------------------------------------------------------


def delivery(delivery_id: str) -> str:
    """A delivery record: one JSON document, expires after JOB_RECORD_TTL_SECONDS."""
    return _key("delivery", delivery_id)


def delivery_lease(delivery_id: str) -> str:
    """SET NX by the one attempt of a delivery running now, to a token of its own (expires
    on its own; released only by the token's holder)."""
    return _key("delivery", delivery_id, "lease")


def channel_deliveries(channel_id: str) -> str:
    """Sorted set of a channel's delivery ids by creation time (epoch ms)."""
    return _key("channel", channel_id, "deliveries")


def owner_test_events(owner_id: str) -> str:
    """How many test events the owner sent in the current rate window (expires with it)."""
    return _key("owner", owner_id, "test-events")


def deliveries_due() -> str:
    """Sorted set of pending delivery ids, scored by their next attempt (epoch ms)."""
    return _key("deliveries", "due")


# --- agents (remote_write, OTLP) ----------------------------------------------------------


def counter_last_sample(owner_id: str, series_digest: str) -> str:
    """A counter series' last sample, "epoch_ms value": the base of its next rate."""
    return _key("agents", owner_id, "counter", series_digest)


def owner_metric_types(owner_id: str) -> str:
    """Hash of metric family → type ("counter", "gauge", ...) from remote_write metadata."""
    return _key("agents", owner_id, "types")
