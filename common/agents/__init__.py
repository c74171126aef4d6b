"""Readings from the agents people already run: Prometheus remote_write and OpenTelemetry
OTLP/HTTP. Each protocol's decoder turns a request into `AgentSeries`; `mapping` names each
one's service and metric; `counters` turns counters into per-second rates; `receiver`
runs the whole path and stores the readings through the ingest path."""
