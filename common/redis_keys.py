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


def scan_scanned_through(metric_id: str) -> str:
    """The end (reading time, epoch ms, exclusive) of the last window scanned for a metric."""
    return _key("scan", "metric", metric_id, "through")


def scan_window_claim(metric_id: str, window_end_ms: int) -> str:
    """SET NX by the one sweep that scans this metric up to this window end."""
    return _key("scan", "metric", metric_id, "claim", window_end_ms)


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
