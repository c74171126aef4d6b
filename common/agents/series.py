"""A series as an agent sent it, before and after it is given a service and a metric."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class AgentSeries:
    """One series of one request: its name, its labels (the metric name not among them),
    whether it is a cumulative counter, and its samples (epoch ms, value) in the order
    sent. The protocol's own service attribute (OTLP's resource `service.name`) travels as
    a label, so one mapping serves both protocols."""

    name: str
    labels: dict[str, str]
    counter: bool = False
    timestamps_ms: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass(slots=True)
class MappedSeries:
    """A series named as Neonomaly stores it: a service and a metric of that service (the
    metric name carries the remaining labels in canonical form; `labels` holds them too)."""

    service: str
    metric: str
    labels: dict[str, str]
    counter: bool
    timestamps_ms: list[int]
    values: list[float]

    @property
    def key(self) -> tuple[str, str]:
        return self.service, self.metric


@dataclass
class ReceiveReport:
    """What one request did: samples received, readings stored, and what was left out and
    why (per series, the first few)."""

    series: int = 0
    samples: int = 0
    stored: int = 0
    duplicates: int = 0
    # Samples that are not readings: staleness markers and other non-finite values, a
    # counter's first sample (the base of its first rate), samples at or before a counter's
    # last one.
    skipped: int = 0
    rejected: int = 0
    rejected_series: list[str] = field(default_factory=list)
    over_limit: int = 0  # series refused at the owner's metric limit (MAX_METRICS_PER_OWNER)
    errors: list[str] = field(default_factory=list)
    metrics_created: int = 0
