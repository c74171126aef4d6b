"""The one place configuration is read: environment variables (and `.env`)."""

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.methods import Method, Sensitivity, Sigma

EMBEDDED = "embedded"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Graph store: "embedded" (bundled FalkorDB), falkordb://host:port, or neo4j://, bolt://, neo4j+s://
    graph_url: str = EMBEDDED
    graph_name: str = "neonomaly"  # FalkorDB graph key; ignored on Neo4j
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("")
    neo4j_database: str = "neo4j"

    # Broker, result backend and job store. Unset: the embedded server (the same one as the graph).
    redis_url: str | None = None

    # Where the embedded server keeps its data, pid and port files.
    data_dir: Path = Path(".neonomaly")

    # Request limits. A batch of 10,000 readings is about 0.8 MB of JSON; it is one graph
    # statement, so MAX_BATCH_READINGS also bounds how long one request holds the writer.
    max_body_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    max_batch_readings: int = Field(default=10_000, gt=0)
    page_size_max: int = Field(default=10_000, gt=0)

    # Ingest. An owner has at most MAX_METRICS_PER_OWNER metrics (creating one more is 429,
    # naming the limit): an agent that puts a request id in a label cannot flood the store.
    # A reading stamped more than MAX_CLOCK_SKEW_SECONDS ahead of the server's clock is
    # refused (422): one reading stamped in 2199 would otherwise be the metric's newest for ever.
    max_metrics_per_owner: int = Field(default=50_000, gt=0)
    max_clock_skew_seconds: int = Field(default=600, ge=0)

    # Jobs. Time limits stay below the broker's visibility timeout, so a job that
    # overruns is killed before Redis hands it to another worker.
    result_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    job_record_ttl_seconds: int = Field(default=30 * 24 * 3600, gt=0)
    job_soft_time_limit_seconds: int = Field(default=300, gt=0)
    job_time_limit_seconds: int = Field(default=330, gt=0)
    broker_visibility_timeout_seconds: int = Field(default=3600, gt=0)
    max_wait_seconds: float = Field(default=30.0, ge=0)
    # `?wait=` requests waiting at once per web process (each holds a Redis connection, no
    # thread); beyond it, `?wait=` answers 202 at once.
    max_waiting_requests: int = Field(default=200, gt=0)
    # The Celery queue of detection jobs; not "neonomaly", the graph's key on the embedded server.
    job_queue: str = "neonomaly.jobs"
    # The queue of periodic work (scan sweeps and their batches, the incident sweep): apart
    # from the jobs, so that long jobs never hold it up (common.queue).
    sweep_queue: str = "neonomaly.sweeps"
    # The Celery queue of webhook deliveries, consumed by workers of their own (README).
    delivery_queue: str = "neonomaly.deliveries"
    job_max_points: int = Field(default=200_000, gt=0)  # newest readings a job reads at most
    # Anomalies one job (or one metric's scan) stores at most: the strongest (highest score)
    # are kept, and the job's summary says how many were dropped. Flagging every reading of
    # a long window is a setting gone wrong, not 100,000 things to page about.
    job_max_anomalies: int = Field(default=1000, gt=0)
    job_max_attempts: int = Field(default=3, gt=0)  # runs of one job (a worker died mid-job)
    job_list_max: int = Field(default=1000, gt=0)  # recent jobs kept listed per user
    # Fault testing only: a running job sleeps this long before its work, so that a test
    # can kill the worker mid-job. Leave at 0.
    job_start_delay_seconds: float = Field(default=0.0, ge=0)

    # Periodic scans (celery beat). A sweep judges, for every metric with new readings, the
    # readings after the last one judged (common.scans); a metric without a detector state
    # yet is judged from its newest SCAN_HISTORY_READINGS within SCAN_WINDOW_SECONDS.
    scan_interval_seconds: float = Field(default=300.0, gt=0)
    scan_window_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    scan_history_readings: int = Field(default=10_000, gt=0)
    # A batch (one Celery task) holds at most this many readings and metrics: what bounds a
    # worker's memory, and how long the incident sweep can wait behind one.
    scan_batch_readings: int = Field(default=10_000, gt=0)
    scan_batch_metrics: int = Field(default=500, gt=0)
    # Readings a sweep rebuilds detector states from, at most (a state that is missing,
    # invalidated by a settings change or an upgrade, or behind late readings): after the
    # metrics whose state is valid, the waiting rebuilds, the longest-waiting first, until
    # this many readings (one at least). A rebuild costs about 55 us of worker CPU a reading
    # (110 ms a metric with a week of 5-minute readings, BENCHMARKS.md "Fleet sweeps"): 4M
    # is about 220 s of one core, half of this 2-core machine's 300 s interval. Scale it
    # with the interval and the cores the sweep queue has to spare.
    scan_rebuild_readings: int = Field(default=4_000_000, gt=0)
    # Sweep records listed per owner by GET /api/scans, and how long one is kept.
    scan_records_kept: int = Field(default=500, gt=0)
    scan_record_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    scan_method: Method = "auto"
    # auto: the alarm probability (unset: the detector's default); rolling/STL: sigma.
    scan_sensitivity: Sensitivity = None
    scan_sigma: Sigma = None

    # Readings: the newest READING_RAW_WINDOW_HOURS stay chain nodes (where late readings
    # splice in and detectors rebuild from); older ones are compacted into chunks by beat
    # every COMPACTION_INTERVAL_SECONDS, and deleted after READING_RETENTION_DAYS (0: never).
    # Six hours between runs: each run rewrites every metric's last chunk, so fewer, larger
    # runs cost less CPU a reading (BENCHMARKS.md), for a raw window up to 6 h longer.
    reading_raw_window_hours: int = Field(default=48, ge=1)
    reading_retention_days: int = Field(default=30, ge=0)
    compaction_interval_seconds: float = Field(default=21600.0, gt=0)

    # Incidents: anomalies of one owner's metrics within INCIDENT_GAP_SECONDS of each other, in
    # one service or services linked by DEPENDS_ON within INCIDENT_MAX_HOPS, are one incident,
    # resolved once nothing joined it for INCIDENT_RESOLVE_SECONDS. Beat runs the incident
    # sweep (resolve, notify) every INCIDENT_SWEEP_SECONDS.
    incident_gap_seconds: int = Field(default=600, ge=0)
    incident_max_hops: int = Field(default=3, ge=0, le=10)
    incident_resolve_seconds: int = Field(default=1800, gt=0)
    incident_sweep_seconds: float = Field(default=15.0, gt=0)

    # Maintenance windows an owner may keep: every judgement of a metric reads its own.
    maintenance_windows_max: int = Field(default=1000, gt=0)

    # Webhooks. Loopback, private, link-local and metadata addresses are refused unless the
    # URL's host is listed here (comma-separated names or IPs).
    webhook_allowed_hosts: str | None = None
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Retries: first after WEBHOOK_RETRY_FIRST_SECONDS, doubling up to WEBHOOK_RETRY_MAX_SECONDS
    # (kept below the broker's visibility timeout), for WEBHOOK_RETRY_FOR_SECONDS in all.
    webhook_retry_first_seconds: float = Field(default=10.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=600.0, gt=0)
    webhook_retry_for_seconds: int = Field(default=2 * 3600, gt=0)
    webhook_deliveries_kept: int = Field(default=200, gt=0)  # delivery log entries per channel
    # Test events (POST .../test) a user may send a minute, over all its channels; more is 429.
    webhook_tests_per_minute: int = Field(default=6, gt=0)

    # Agents: Prometheus remote_write (POST /api/v1/write) and OTLP/HTTP (POST /v1/metrics).
    # A body is refused (413) over MAX_BODY_BYTES as sent, over AGENT_MAX_DECODED_BYTES once
    # decompressed, or holding over AGENT_MAX_SAMPLES_PER_REQUEST samples. A counter's last
    # sample (the base of its next rate) is kept AGENT_COUNTER_TTL_SECONDS after it was seen.
    agent_max_decoded_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    agent_max_samples_per_request: int = Field(default=50_000, gt=0)
    agent_counter_ttl_seconds: int = Field(default=24 * 3600, gt=0)

    # Neonomaly's own metrics (/metrics, Prometheus text format), off unless one is set:
    # METRICS_TOKEN: served on the API's port to `Authorization: Bearer METRICS_TOKEN` only;
    # METRICS_ADDRESS (host:port, e.g. 127.0.0.1:9464): served without a token on a listener
    # of its own at that address, which you keep private.
    metrics_token: SecretStr | None = None
    metrics_address: str | None = Field(default=None, pattern=r"^\S+:\d{1,5}$")

    log_level: str = "INFO"

    @property
    def uses_embedded(self) -> bool:
        return self.graph_url in ("", EMBEDDED)


@lru_cache
def get_settings() -> Settings:
    return Settings()
