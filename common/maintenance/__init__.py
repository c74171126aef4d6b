"""Maintenance windows: spans of time (one-off, or weekly in a named time zone) during which
a service's, a metric's or all of an owner's anomalies are stored muted: they open or join
no incident and notify nobody."""
