"""Which service and metric a series becomes: the documented mapping (README, "Send metrics
from Prometheus or OpenTelemetry"), configurable per request.

- The service is the value of the first label present among `service_labels` (remote_write:
  `job`, then `service`, then `service_name`; OTLP: the resource's `service.name`), else
  `default_service`; `service=NAME` puts every series of the request in one service.
- The metric is the series' name with its other labels in canonical form, sorted by name,
  values escaped as Prometheus prints them: `node_cpu_seconds_total{cpu="0",mode="idle"}`.
  The label that named the service, empty labels and `drop_labels` are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from common.agents.series import AgentSeries, MappedSeries

# The names limit every metric and service name keeps (the API's, DESIGN's).
MAX_NAME_CHARS = 100
# Prometheus' classic names (remote write 1.0 requires them of a sender).
PROMETHEUS_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
PROMETHEUS_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n"}
_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f\x7f-\x9f]')


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"


def escape(value: str) -> str:
    """A label value as Prometheus prints it between quotes (backslash, quote and newline
    escaped), other control characters as \\uXXXX, so that a name holds none."""
    return _NEEDS_ESCAPE.sub(_escape_char, value)


def _label_name(name: str) -> str:
    # OTLP attribute keys such as `http.method` print quoted, as Prometheus 3 prints UTF-8 names.
    return name if PROMETHEUS_LABEL_NAME.fullmatch(name) else f'"{escape(name)}"'


def canonical_name(name: str, labels: dict[str, str]) -> str:
    """`name{a="x",b="y"}`: the labels sorted by name; just `name` without labels."""
    metric = name if PROMETHEUS_METRIC_NAME.fullmatch(name) else escape(name)
    if not labels:
        return metric
    inner = ",".join(f'{_label_name(k)}="{escape(labels[k])}"' for k in sorted(labels))
    return f"{metric}{{{inner}}}"


@dataclass(frozen=True)
class MappingOptions:
    service_labels: tuple[str, ...]
    default_service: str
    service: str | None = None  # every series in this one service
    drop_labels: frozenset[str] = frozenset()
    resource_labels: tuple[str, ...] = ()  # OTLP: resource attributes kept as labels

    @classmethod
    def parse(
        cls,
        defaults: MappingOptions,
        service_labels: str | None,
        service: str | None,
        drop_labels: str | None,
        resource_labels: str | None = None,
    ) -> MappingOptions:
        """Options from a request's query (`?service_labels=a,b&service=S&drop_labels=c,d`,
        OTLP: `&resource_labels=e,f`), the protocol's `defaults` for what it leaves out."""
        return cls(
            service_labels=_names(service_labels) or defaults.service_labels,
            default_service=defaults.default_service,
            service=service or None,
            drop_labels=frozenset(_names(drop_labels)) | defaults.drop_labels,
            resource_labels=_names(resource_labels) or defaults.resource_labels,
        )


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


REMOTE_WRITE_MAPPING = MappingOptions(
    service_labels=("job", "service", "service_name"), default_service="prometheus"
)
# OpenTelemetry's own default for a resource without service.name.
OTLP_MAPPING = MappingOptions(service_labels=("service.name",), default_service="unknown_service")


@dataclass(frozen=True)
class Refused:
    """A series that cannot be named: as sent, why, and how many samples it held."""

    sent_as: str
    why: str
    samples: int


@dataclass
class Mapped:
    """The request's series by (service, metric), and those that cannot be named."""

    series: dict[tuple[str, str], MappedSeries]
    refused: list[Refused]

    @property
    def samples(self) -> int:
        return sum(len(s.values) for s in self.series.values())


def map_series(batch: Iterable[AgentSeries], options: MappingOptions) -> Mapped:
    """Name every series; series that end up with the same service and metric (the same
    series sent twice, or labels told to be dropped) are merged."""
    mapped: dict[tuple[str, str], MappedSeries] = {}
    refused: list[Refused] = []
    for series in batch:
        labels = {k: v for k, v in series.labels.items() if v and k not in options.drop_labels}
        service_label = next((k for k in options.service_labels if k in labels), None)
        if options.service:
            service = options.service
        elif service_label is not None:
            service = labels.pop(service_label)
        else:
            service = options.default_service
        metric = canonical_name(series.name, labels)
        problem = _name_problem("service", service) or _name_problem("metric", metric)
        if problem:
            sent_as = canonical_name(series.name, series.labels)[:300]
            refused.append(Refused(sent_as, problem, len(series.values)))
            continue
        found = mapped.get((service, metric))
        if found is None:
            mapped[(service, metric)] = MappedSeries(
                service, metric, labels, series.counter, series.timestamps_ms, series.values
            )
        else:
            found.timestamps_ms = found.timestamps_ms + series.timestamps_ms
            found.values = found.values + series.values
            found.counter = found.counter or series.counter
    return Mapped(mapped, refused)


def _name_problem(what: str, name: str) -> str | None:
    if len(name) > MAX_NAME_CHARS:
        return (
            f"the {what} name would be {len(name)} characters, over {MAX_NAME_CHARS}: leave "
            "labels out with ?drop_labels=a,b (or Prometheus' write_relabel_configs)"
        )
    if _CONTROL.search(name):
        return f"the {what} name {escape(name)!r} holds control characters"
    return None
