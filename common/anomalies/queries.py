"""Anomalies' Cypher: flagged readings stored linked to them, and people's feedback.

Written by the rules of every query module (see common.graph.queries): the Cypher
subset both Neo4j 5 and FalkorDB run, values only through $parameters, every write one
statement, times as epoch milliseconds, scalar columns only.
"""

# One anomaly per flagged reading, whatever flagged it (a job of any method, a scan):
#  - An anomaly stored while ids still held the method keeps its id (the smallest, if the
#    reading has two of those): found by the (metric_id, timestamp) index, not through
#    FLAGS, which a reading compacted out of the chain no longer has. Otherwise the id is
#    a.id, derived from (metric, reading), and MERGE on that unique id makes two writers
#    saving one reading meet on one node (on Neo4j by its constraint).
#  - `methods` gathers every method that flagged the reading.
#  - The strongest evidence (the highest score) is kept whole: value, expected, bounds,
#    score, probability, kind, summary, event span, method and job. A weaker finding adds
#    only its method.
#  - Linked (FLAGS) to its reading while that is a raw chain node; a reading already
#    compacted into a ReadingChunk (older than the metric's compacted boundary) has no node,
#    and the anomaly keeps its time, value and expected value on its own (as it does when
#    the reading is compacted or deleted later). A raw reading that does not exist gets none.
# A metric being deleted (or gone) gets nothing: its readings are going.
# One row per anomaly stored, with the id it is stored under.
# Muted (in a maintenance window) is decided when the anomaly is first stored: a window
# deleted later does not put it into an incident; one made later mutes it through its reach
# into the past (common.maintenance.reach).
SAVE_ANOMALIES = """
MATCH (m:Metric {id: $metric_id})
WHERE m.deleting IS NULL
UNWIND $anomalies AS a
OPTIONAL MATCH (r:MetricReading {metric_id: $metric_id, id: a.reading_id})
WITH m, a, r
WHERE r IS NOT NULL OR a.timestamp < coalesce(m.compacted_through, $min)
OPTIONAL MATCH (old:Anomaly)
WHERE old.metric_id = $metric_id AND old.timestamp = a.timestamp
  AND old.reading_id = a.reading_id
WITH a, r, min(old.id) AS old_id
MERGE (an:Anomaly {id: coalesce(old_id, a.id)})
ON CREATE SET an.detected_at = $now, an.metric_id = $metric_id, an.reading_id = a.reading_id,
              an.timestamp = a.timestamp, an.muted = a.muted
WITH a, r, an, an.score IS NULL OR a.score > an.score AS stronger,
     coalesce(an.methods, CASE WHEN an.method IS NULL THEN [] ELSE [an.method] END) AS methods
SET an.methods = CASE WHEN a.method IN methods THEN methods ELSE methods + a.method END,
    an.value = CASE WHEN stronger THEN a.value ELSE an.value END,
    an.expected = CASE WHEN stronger THEN a.expected ELSE an.expected END,
    an.lower = CASE WHEN stronger THEN a.lower ELSE an.lower END,
    an.upper = CASE WHEN stronger THEN a.upper ELSE an.upper END,
    an.score = CASE WHEN stronger THEN a.score ELSE an.score END,
    an.probability = CASE WHEN stronger THEN a.probability ELSE an.probability END,
    an.kind = CASE WHEN stronger THEN a.kind ELSE an.kind END,
    an.summary = CASE WHEN stronger THEN a.summary ELSE an.summary END,
    an.event_start = CASE WHEN stronger THEN a.event_start ELSE an.event_start END,
    an.event_end = CASE WHEN stronger THEN a.event_end ELSE an.event_end END,
    an.method = CASE WHEN stronger THEN a.method ELSE an.method END,
    an.job_id = CASE WHEN stronger THEN $job_id ELSE an.job_id END
FOREACH (x IN CASE WHEN r IS NULL THEN [] ELSE [r] END | MERGE (an)-[:FLAGS]->(x))
RETURN a.reading_id AS reading_id, an.id AS id
"""

# SAVE_ANOMALIES for a judgement that marked muted the anomalies in the owner's windows as
# of generation $windows_seq (common.maintenance.queries): stores nothing (no row) if the
# owner's windows changed since. Checked in the same statement, under the owner's lock
# (which every change of a window takes, as JOIN_OR_OPEN_INCIDENT does): an anomaly judged
# against the windows before a change is either stored before that change commits (and the
# window's reach, which runs after it, mutes it) or not at all (the caller reads the
# windows again and marks it anew). Else a sweep batch that read the windows just before a
# window was made stored one of its anomalies unmuted after the reach had passed.
SAVE_ANOMALIES_UNDER_WINDOWS = (
    """
MATCH (u:User {id: $owner_id})
SET u.incident_seq = coalesce(u.incident_seq, 0) + 1
WITH u
WHERE coalesce(u.windows_seq, 0) = $windows_seq
"""
    + SAVE_ANOMALIES
)

# Every read of an anomaly returns these columns, so that each shows the same fields.
_ANOMALY_COLUMNS = """
RETURN a.id AS id, a.metric_id AS metric_id, a.reading_id AS reading_id,
       a.timestamp AS timestamp, a.value AS value, a.expected AS expected, a.lower AS lower,
       a.upper AS upper, a.score AS score, a.method AS method,
       coalesce(a.methods, [a.method]) AS methods, a.event_start AS event_start,
       a.event_end AS event_end, a.detected_at AS detected_at, a.job_id AS job_id,
       a.probability AS probability, a.kind AS kind, a.summary AS summary,
       a.feedback AS feedback, a.feedback_at AS feedback_at,
       coalesce(a.muted, false) AS muted
"""

# Keyset paging, as LIST_READINGS_AFTER: strictly after ($after_timestamp, $after_id) in
# (timestamp, id) order, with $start at least $after_timestamp (keyset_page sees to it) so that
# the index range does the paging. The first page passes ($start, ""): every id is above "".
# `<= $end - 1`, never `< $end`: a strict bound walks every anomaly of every metric stamped
# at $end (see the readings' section of common/metrics/queries.py).
LIST_ANOMALIES = (
    """
MATCH (a:Anomaly)
WHERE a.metric_id = $metric_id AND a.timestamp >= $start AND a.timestamp <= $end - 1
  AND NOT (a.timestamp = $after_timestamp AND a.id <= $after_id)
"""
    + _ANOMALY_COLUMNS
    + """
ORDER BY a.timestamp, a.id
LIMIT $limit
"""
)

# One anomaly, found through its metric's owner (not while the metric is being deleted);
# feedback is what a person said of it.
_OWNED_ANOMALY = """
MATCH (a:Anomaly {id: $anomaly_id})
MATCH (:User {id: $owner_id})-[:OWNS]->(:Service)-[:MONITORS]->(m:Metric {id: a.metric_id})
WHERE m.deleting IS NULL
"""

GET_ANOMALY = _OWNED_ANOMALY + _ANOMALY_COLUMNS

# A verdict that makes or unmakes `confirmed` changes what the metric's detector may learn
# from (common.anomalies.lessons): if sweeps already judged the anomaly's readings, the
# metric is marked as a late append marks it, so the next sweep rebuilds its state from
# the event's start with the verdict taken into account.
_RELEARN = """
WITH a, m, coalesce(a.feedback = 'confirmed', false) <> coalesce($verdict = 'confirmed', false)
     AND a.event_start <= coalesce(m.judged_through, $min) AS relearn
SET a.feedback = $verdict, a.feedback_at = $now
FOREACH (_ IN CASE WHEN relearn THEN [1] ELSE [] END |
  SET m.late_seq = coalesce(m.late_seq, 0) + 1,
      m.late_from = CASE WHEN m.late_from IS NULL OR a.event_start < m.late_from
                         THEN a.event_start ELSE m.late_from END)
WITH a
"""

SET_ANOMALY_FEEDBACK = _OWNED_ANOMALY + _RELEARN + _ANOMALY_COLUMNS


# What the metrics' detectors are taught and kept from learning (common.anomalies.lessons):
# per metric, its newest $limit anomalies that have a verdict or are in an open incident,
# as parallel lists (collect skips nulls: the nullable columns are coalesced). Reads the
# metric's anomalies through the (metric_id, timestamp) index; an anomaly's incident is one
# relationship away.
METRIC_LESSONS = """
UNWIND $metric_ids AS metric_id
MATCH (a:Anomaly)
WHERE a.metric_id = metric_id AND a.timestamp >= $min
OPTIONAL MATCH (i:Incident {status: 'open'})-[:INCLUDES]->(a)
WITH metric_id, a, count(i) AS open
WHERE a.feedback IS NOT NULL OR open > 0
WITH metric_id, a, open
ORDER BY a.timestamp DESC
// Each anomaly carries its open-incident count along: not matched a second time.
WITH metric_id, collect({anomaly: a, open: open})[0..$limit] AS newest
UNWIND newest AS kept
WITH metric_id, kept.anomaly AS a, kept.open AS open
RETURN metric_id, a.timestamp AS timestamp, a.event_start AS event_start,
       a.event_end AS event_end, a.kind AS kind, a.value AS value, a.expected AS expected,
       a.probability AS probability, a.feedback AS feedback, open > 0 AS open
"""
