"""Anomalies' Cypher: flagged readings stored linked to them, and people's feedback.

Written by the rules of every query module (see common.graph.queries): the Cypher
subset both Neo4j 5 and FalkorDB run, values only through $parameters, every write one
statement, times as epoch milliseconds, scalar columns only.
"""

# Keyed on a deterministic id (metric, reading, method): a re-run updates, never duplicates.
# Muted (in a maintenance window) is decided when the anomaly is first stored: a window
# made or deleted later does not take it out of an incident, or put it into one.
SAVE_ANOMALIES = """
UNWIND $anomalies AS a
MATCH (r:MetricReading {metric_id: $metric_id, id: a.reading_id})
MERGE (an:Anomaly {id: a.id})
ON CREATE SET an.detected_at = $now, an.muted = a.muted
SET an.metric_id = $metric_id, an.reading_id = a.reading_id, an.timestamp = a.timestamp,
    an.value = a.value, an.expected = a.expected, an.lower = a.lower, an.upper = a.upper,
    an.score = a.score, an.method = a.method, an.event_start = a.event_start,
    an.event_end = a.event_end, an.job_id = $job_id, an.probability = a.probability,
    an.kind = a.kind, an.summary = a.summary
MERGE (an)-[:FLAGS]->(r)
RETURN count(an) AS saved
"""

# Keyset paging, as LIST_READINGS_AFTER: strictly after ($after_timestamp, $after_id) in
# (timestamp, id) order, with $start at least $after_timestamp (keyset_page sees to it) so that
# the index range does the paging. The first page passes ($start, ""): every id is above "".
LIST_ANOMALIES = """
MATCH (a:Anomaly)
WHERE a.metric_id = $metric_id AND a.timestamp >= $start AND a.timestamp < $end
  AND NOT (a.timestamp = $after_timestamp AND a.id <= $after_id)
RETURN a.id AS id, a.metric_id AS metric_id, a.reading_id AS reading_id,
       a.timestamp AS timestamp, a.value AS value, a.expected AS expected, a.lower AS lower,
       a.upper AS upper, a.score AS score, a.method AS method, a.event_start AS event_start,
       a.event_end AS event_end, a.detected_at AS detected_at, a.job_id AS job_id,
       a.probability AS probability, a.kind AS kind, a.summary AS summary,
       a.feedback AS feedback, a.feedback_at AS feedback_at,
       coalesce(a.muted, false) AS muted
ORDER BY a.timestamp, a.id
LIMIT $limit
"""

# One anomaly, found through its metric's owner; feedback is what a person said of it.
_OWNED_ANOMALY = """
MATCH (a:Anomaly {id: $anomaly_id})
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service)-[:MONITORS]->(:Metric {id: a.metric_id})
"""

_ANOMALY_COLUMNS = """
RETURN a.id AS id, a.metric_id AS metric_id, a.reading_id AS reading_id,
       a.timestamp AS timestamp, a.value AS value, a.expected AS expected, a.lower AS lower,
       a.upper AS upper, a.score AS score, a.method AS method, a.event_start AS event_start,
       a.event_end AS event_end, a.detected_at AS detected_at, a.job_id AS job_id,
       a.feedback AS feedback, a.feedback_at AS feedback_at,
       coalesce(a.muted, false) AS muted
"""

GET_ANOMALY = _OWNED_ANOMALY + _ANOMALY_COLUMNS

SET_ANOMALY_FEEDBACK = (
    _OWNED_ANOMALY
    + """
SET a.feedback = $verdict, a.feedback_at = $now
"""
    + _ANOMALY_COLUMNS
)
